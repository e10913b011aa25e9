"""The conformance suite: run it against any ``concurrent.futures.Executor``.

Every ``test_*`` module here checks one thing the scheduler relies on (the
executor contract, errors, user code, collections, results that stay
remote...) on the executor that :mod:`daskexec.testing.plugin` provides.
Run it on a registered backend::

    pytest -p daskexec.testing.plugin --pyargs daskexec.testing --backend=loky

or on your own executor with a ``conftest.py`` of a few lines (see the
plugin's docstring and ``examples/custom_executor/``)::

    pytest --pyargs daskexec.testing

The suite needs ``daskexec-core[test]`` (pytest, pytest-timeout, psutil,
NumPy, pandas, PyArrow and Dask's collections).
"""
