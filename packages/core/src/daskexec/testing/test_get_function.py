"""Dask's own specification of a get function, run on the backend."""

from __future__ import annotations

import pytest
from dask.utils_test import GetFunctionTestMixin

import daskexec


class TestGetFunction(GetFunctionTestMixin):
    @pytest.fixture(autouse=True)
    def _scheduler(self, scheduler: daskexec.ExecutorScheduler) -> None:
        self.get = scheduler


def _bogus_get(dsk: object, keys: object, **kwargs: object) -> object:
    """A get function that is wrong: it answers 1 to everything."""
    return tuple(1 for _ in keys) if isinstance(keys, list) else 1


class TestTheMixinCatchesABogusGet(GetFunctionTestMixin):
    """The suite's key check fails a broken implementation (as dask/tests/test_core.py does)."""

    get = staticmethod(_bogus_get)

    def test_get(self) -> None:
        with pytest.raises(AssertionError):
            super().test_get()

    def test_badkey(self) -> None:
        with pytest.raises(AssertionError):
            super().test_badkey()

    def test_nested_badkey(self) -> None:
        with pytest.raises(AssertionError):
            super().test_nested_badkey()

    def test_data_not_in_dict_is_ok(self) -> None:
        with pytest.raises(AssertionError):
            super().test_data_not_in_dict_is_ok()

    def test_get_with_list(self) -> None:
        with pytest.raises(AssertionError):
            super().test_get_with_list()

    def test_get_with_list_top_level(self) -> None:
        with pytest.raises(AssertionError):
            super().test_get_with_list_top_level()

    def test_get_with_nested_list(self) -> None:
        with pytest.raises(AssertionError):
            super().test_get_with_nested_list()

    def test_get_works_with_unhashables_in_values(self) -> None:
        with pytest.raises(AssertionError):
            super().test_get_works_with_unhashables_in_values()

    def test_nested_tasks(self) -> None:
        with pytest.raises(AssertionError):
            super().test_nested_tasks()

    def test_get_stack_limit(self) -> None:
        with pytest.raises(AssertionError):
            super().test_get_stack_limit()

    def test_with_HighLevelGraph(self) -> None:
        with pytest.raises(AssertionError):
            super().test_with_HighLevelGraph()
