"""This repository's tests use the conformance suite's plugin (``--backend=NAME``)."""

pytest_plugins = ["daskexec.testing.plugin"]
