"""The Ray adapter's own tests run on the suite's executor, with ``--backend=ray``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _only_with_ray(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--backend") != "ray":
        pytest.skip("tests of the Ray adapter: run with --backend=ray")
