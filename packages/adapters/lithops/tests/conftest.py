"""The Lithops adapter's own tests run on the suite's executor, with ``--backend=lithops``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _only_with_lithops(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--backend") != "lithops":
        pytest.skip("tests of the Lithops adapter: run with --backend=lithops")
