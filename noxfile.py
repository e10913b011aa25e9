"""Everything the project runs: tests per backend, benchmarks, lint, types, wheels, demo.

One venv per backend session, holding daskexec-core plus that backend's
adapter, installed from the package folders as a user would install them:
a dependency an adapter forgets to declare shows up here.
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

CORE = "packages/core"
# backend name -> adapter package folders it needs besides core
BACKENDS: dict[str, list[str]] = {
    "threads": [],
    "processes": ["packages/adapters/stdlib"],
    "multiprocessing-pool": ["packages/adapters/stdlib"],
    "loky": ["packages/adapters/loky"],
    "ray": ["packages/adapters/ray"],
    "lithops": ["packages/adapters/lithops"],
}
PACKAGES = [CORE, *sorted({p for pkgs in BACKENDS.values() for p in pkgs})]
TEST_DEPS = ["pytest>=8", "pytest-timeout>=2.3", "psutil>=5.9"]
# Executors nobody here wrote, each wired to the suite by interop/<name>/conftest.py:
# name -> what it needs from PyPI besides core, and the command that runs pytest there.
INTEROP: dict[str, tuple[list[str], list[str]]] = {
    "distributed": (["distributed>=2026.8"], ["pytest"]),
    "parsl": (["parsl>=2026.10.26"], ["pytest"]),
    # rank 0 runs pytest, ranks 1 and 2 are the workers of MPIPoolExecutor's pool
    "mpi": (
        ["mpi4py>=4.1", "mpich>=5.0"],
        ["mpiexec", "-n", "3", "python", "-m", "mpi4py.futures", "-m", "pytest"],
    ),
    # not a third-party executor: daskexec's own simulated platform
    # (daskexec.testing.simulated), shown to pass the suite like a real engine
    "simulated": ([], ["pytest"]),
}
nox.options.sessions = [
    *(f"test-{name}" for name in BACKENDS),
    *(f"test-{name}" for name in INTEROP),
    "lint",
    "typecheck",
    "build",
    "bench-quick",
    "bench-scale-quick",
]


def _own_tests(name: str) -> list[str]:
    """Test folders run besides the installed suite: an adapter's own, or the core's (once)."""
    if name == "threads":
        return [f"{CORE}/tests"]
    return [f"{p}/tests" for p in BACKENDS[name] if os.path.isdir(f"{p}/tests")]


def _install_backend(session: nox.Session, name: str) -> None:
    session.install(f"./{CORE}[test,diagnostics]", *[f"./{p}" for p in BACKENDS[name]], *TEST_DEPS)


for _name in BACKENDS:

    @nox.session(name=f"test-{_name}", tags=["test"])
    def _test(session: nox.Session, name: str = _name) -> None:
        """Run the whole conformance suite on one backend."""
        _install_backend(session, name)
        session.run(
            "pytest",
            "--pyargs",
            "daskexec.testing",
            *_own_tests(name),
            f"--backend={name}",
            *session.posargs,
        )

    @nox.session(name=f"bench-{_name}", tags=["bench"])
    def _bench(session: nox.Session, name: str = _name) -> None:
        """Benchmark one backend against its anchors."""
        _install_backend(session, name)
        session.install("-r", "benchmarks/requirements.txt")
        session.run("python", "-m", "benchmarks", f"--backends={name}", *session.posargs)


for _name in INTEROP:

    @nox.session(name=f"test-{_name}", tags=["test", "interop"])
    def _interop(session: nox.Session, name: str = _name) -> None:
        """Run the conformance suite on a third-party executor (interop/<name>/conftest.py)."""
        requirements, pytest = INTEROP[name]
        session.install(f"./{CORE}[test,diagnostics]", *TEST_DEPS, *requirements)
        session.chdir(f"interop/{name}")
        # the launcher and the engines' own scripts (parsl's interchange.py,
        # mpich's mpiexec) are found on PATH, in this session's venv
        session.run(*pytest, "--pyargs", "daskexec.testing", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark every backend against every anchor, in one run."""
    session.install(f"./{CORE}[test]", *[f"./{p}" for p in PACKAGES if p != CORE])
    session.install("-r", "benchmarks/requirements.txt")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(name="bench-quick")
def bench_quick(session: nox.Session) -> None:
    """Smoke run of the benchmarks (tiny sizes): CI checks that they run, not their speed."""
    _install_backend(session, "threads")
    session.install("-r", "benchmarks/requirements.txt")
    session.run("python", "-m", "benchmarks", "--quick", "--backends=threads", *session.posargs)


@nox.session(name="bench-scale")
def bench_scale(session: nox.Session) -> None:
    """Scale benchmark, 10^4 to 10^6 tasks: this machine, and a simulated 1,000-worker platform."""
    session.install(f"./{CORE}", "-r", "benchmarks/requirements.txt")
    session.run("python", "-m", "benchmarks.scale", *session.posargs)


@nox.session(name="bench-scale-quick")
def bench_scale_quick(session: nox.Session) -> None:
    """The scale benchmark's CI smoke run (2,000-task graphs, about a minute)."""
    session.install(f"./{CORE}", "-r", "benchmarks/requirements.txt")
    session.run("python", "-m", "benchmarks.scale", "--quick", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.17,<0.18")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every package's source."""
    # pytest: the suite's plugin (daskexec.testing.plugin) is typed against it
    session.install("mypy>=2.0,<3", "pytest>=8", *[f"./{p}" for p in PACKAGES])
    session.run("mypy", *[f"{p}/src" for p in PACKAGES])


@nox.session
def build(session: nox.Session) -> None:
    """Build every wheel; install core's in a fresh venv and run the seed example there."""
    session.install("build>=1.0", "hatchling>=1.21")
    out = tempfile.mkdtemp(prefix="daskexec-wheels-")
    for pkg in PACKAGES:
        session.run("python", "-m", "build", "--wheel", "--no-isolation", "--outdir", out, pkg)
    wheels = sorted(glob.glob(os.path.join(out, "*.whl")))
    session.log("built: " + ", ".join(os.path.basename(w) for w in wheels))
    core_wheel = next(w for w in wheels if os.path.basename(w).startswith("daskexec_core-"))
    venv = os.path.join(out, "venv")
    session.run("uv", "venv", "--python", sys.executable, venv, external=True)
    py = os.path.join(venv, "bin", "python")
    session.run("uv", "pip", "install", "--python", py, core_wheel, "dask[array]", external=True)
    for wheel in wheels:
        if wheel != core_wheel:
            session.run("uv", "pip", "install", "--python", py, core_wheel, wheel, external=True)
            dist = os.path.basename(wheel).split("-")[0]
            module = (
                dist.replace("daskexec_", "daskexec_") if dist != "daskexec_core" else "daskexec"
            )
            session.run(
                py, "-c", f"import {module}; print({module}.__name__, 'imports')", external=True
            )
    session.run(py, "examples/threadpool_executor.py", external=True)
    # the conformance suite from the core wheel alone, on an executor nobody registered
    session.run(
        "uv", "pip", "install", "--python", py, f"daskexec-core[test] @ {core_wheel}", external=True
    )
    with session.chdir("examples/custom_executor"):
        session.run(
            py,
            "-m",
            "pytest",
            "--pyargs",
            "daskexec.testing",
            "-q",
            "-p",
            "no:cacheprovider",
            external=True,
        )


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the seed example on the default executor."""
    session.install(f"./{CORE}", "dask[array]", "numpy")
    session.run("python", "examples/threadpool_executor.py")
