"""A ``concurrent.futures.Executor`` over Lithops, described for daskexec.

Data flow
---------
::

    submit_many(fn, payloads)                       (map and submit use it too)
      -> the driver's own modules the pickles of fn and the payloads refer to
         (_modules): shipped with the job, as Lithops' include_modules
      -> ONE Lithops job: lithops.FunctionExecutor.map(partial(apply, fn),
                                                       [{"payload": p}, ...])
         fn travels once, in the job's function; each payload is one call's data;
         apply returns an outcome, the result or exception cloudpickled
         (daskexec.kit, through _remote)
      -> lithops.concurrent.futures.FunctionExecutor tracks the job's calls:
         its watcher reads the job monitor, its resolver threads download each
         result as soon as that call is done (in whatever order they finish)
      -> daskexec.kit.bridge settles one of our futures per call from the
         outcome, or turns a failure that Lithops' worker handler reported
         (the function's process died, or ran past the execution timeout)
         into LithopsWorkerError
      -> on localhost (_localhost): an abandoned call's process is killed, and
         a call whose process died without a status fails at once with
         LithopsWorkerError (Lithops alone waits for the execution timeout)

What this adds to ``lithops.concurrent.futures``
------------------------------------------------
That module does the hard part (completion tracking) and is reused as is.  It
falls short for daskexec in these ways, handled here:

- It has no way to turn one ``map`` job into per-call futures (its ``map``
  yields results, in order).  ``submit_many`` hands a job's Lithops futures to
  its tracker (``_track``, a private method fenced in
  :mod:`daskexec_lithops._compat`: the reason for the upper bound on the
  lithops version in this package's metadata).
- It has no worker count or call cost the scheduler can read: those come from
  the Lithops config (``__daskexec_engine__``).
- It reports a call whose process died as a plain ``RuntimeError``, which the
  scheduler could not tell from the task's own ``RuntimeError``.  Lithops marks
  such failures in the call's status; they become :class:`LithopsWorkerError`.
- It refuses ``RetryingFunctionExecutor``.  Not needed: the daskexec scheduler
  retries engine failures itself, with a bound, per work item.
- Lithops ships the modules the job's function needs; the user's functions
  travel inside the payloads (pickles), which it does not look into.
- Results travel with plain pickle (no lambdas), exceptions through the
  worker handler (one that does not unpickle is lost, and so is a
  ``BaseException`` other than SystemExit and KeyboardInterrupt): every call
  returns an outcome instead, the result or exception cloudpickled.

Also: on the localhost backend the calls run under the driver's interpreter
(``sys.executable``) unless the config names a runtime (Lithops' default is
whatever ``python`` is first on ``PATH``, often not the one with Dask); and
``shutdown`` deletes the jobs' data from storage itself, synchronously
(Lithops' own cleaner is a detached process that sleeps between passes;
:mod:`daskexec_lithops._jobs`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import pickle
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import cloudpickle
import lithops
import lithops.concurrent.futures as lithops_cf

from daskexec import Checkpoint
from daskexec.cost import Price
from daskexec.engine import EngineInfo
from daskexec.kit import EagerMap, Intake
from daskexec_lithops import _localhost, _remote
from daskexec_lithops._calls import Calls, LithopsWorkerError
from daskexec_lithops._checkpoint import LithopsCheckpointStorage, prefix_for
from daskexec_lithops._compat import tracker
from daskexec_lithops._config import (
    CLOUD_CALL_OVERHEAD,
    LOCALHOST_CALL_OVERHEAD,
    billing,
    capacity,
    module_names,
    resolve_config,
)
from daskexec_lithops._jobs import JobData
from daskexec_lithops._modules import ModuleShipper
from daskexec_lithops._store import ResultStores

__all__ = [
    "CLOUD_CALL_OVERHEAD",
    "LOCALHOST_CALL_OVERHEAD",
    "LithopsExecutor",
    "LithopsWorkerError",
]

logger = logging.getLogger("daskexec_lithops")

T = TypeVar("T")

# the name a test of this package imports it by
_resolve_config = resolve_config


class LithopsExecutor(EagerMap, concurrent.futures.Executor):
    """Run calls on Lithops: the localhost backend by default, any cloud by config.

    Parameters
    ----------
    config
        A Lithops configuration dictionary (the content of a Lithops config
        file).  When neither ``config`` nor a Lithops config file
        (``LITHOPS_CONFIG_FILE``, ``~/.lithops/config``, ...) exists, calls run
        on Lithops' localhost backend with localhost storage: nothing to set up.
    backend, storage
        Lithops compute and storage backend names (``"localhost"``,
        ``"aws_lambda"``, ``"gcp_cloudrun"``, ``"aws_s3"``, ...), overriding
        the config.
    workers
        How many calls run at once: local processes on localhost (default:
        the CPU count), otherwise the backend's ``max_workers``.
    execution_timeout
        Seconds a call may run before Lithops kills it; its future then fails
        with :class:`LithopsWorkerError`.  Default: the Lithops config's.
    call_overhead
        Seconds one call costs beyond its work, as reported to the scheduler
        (it packs more tasks into one call the higher this is).  Default:
        :data:`LOCALHOST_CALL_OVERHEAD` on localhost, else
        :data:`CLOUD_CALL_OVERHEAD`.
    include_modules, exclude_modules
        Lithops' module manager, as in ``lithops.FunctionExecutor.map``.  By
        default (an empty ``include_modules``) each job ships the driver's
        own modules (not installed in the Lithops runtime) that its
        functions and data refer to, found in their pickles, with the
        modules those import in turn: a script whose tasks come from a
        module beside it works as on a local process pool.  A list ships
        exactly those modules instead; ``None`` ships none.
        ``exclude_modules`` are never shipped.  The Lithops config's
        ``include_modules``/``exclude_modules`` apply too.
    price
        What a call costs (a :class:`daskexec.cost.Price`), for the GB-seconds
        and the price each compute reports; default: daskexec's list price for
        the config's backend (:data:`daskexec.cost.PRICES`), none on localhost.
    **function_executor_kwargs
        Passed to ``lithops.FunctionExecutor`` (``config_file``,
        ``monitoring``, ``log_level``, backend keys such as ``runtime`` or
        ``runtime_memory``).

    Notes
    -----
    Contracts, beyond :class:`concurrent.futures.Executor`'s:

    - :meth:`submit_many` makes one Lithops job of a whole batch, and each of
      its futures completes when its own call does, not in order.
      ``map`` is one job too (:class:`daskexec.kit.EagerMap`: every call is
      submitted before it returns, and a ``timeout`` counts from the call;
      ``chunksize`` is ignored, how many calls share one invocation is the
      Lithops config's ``chunksize``); :meth:`submit` is a one-call job.
    - Lithops cannot say when a dispatched call starts running, nor recall
      it, so a future stays pending until its call's outcome arrives and
      ``cancel()`` succeeds until then: the call is abandoned (its result is
      dropped, :meth:`shutdown` does not wait for it, and a local process
      runs on until it ends or :meth:`shutdown` stops it).
    - A future fails with :class:`LithopsWorkerError` when the engine lost the
      call (its process died, or it timed out); with the function's own
      exception when the function raised.  Either way the executor goes on
      taking work.
    - Through daskexec, results stay in the Lithops storage backend: each
      compute's under a prefix of its own, deleted when the compute ends
      (:mod:`daskexec_lithops._store`).
    - :meth:`shutdown` deletes what this executor's jobs wrote to storage
      (unless the config sets ``data_cleaner: false``) and any stored results
      left, and stops the Lithops job monitor, invoker and local worker
      processes.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        backend: str | None = None,
        storage: str | None = None,
        workers: int | None = None,
        *,
        execution_timeout: float | None = None,
        call_overhead: float | None = None,
        include_modules: Sequence[str] | None = (),
        exclude_modules: Sequence[str] = (),
        price: Price | None = None,
        **function_executor_kwargs: Any,
    ) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be an int >= 1 or None, got {workers!r}")
        if execution_timeout is not None and execution_timeout <= 0:
            raise ValueError(f"execution_timeout must be > 0 seconds, got {execution_timeout!r}")
        if call_overhead is not None and call_overhead < 0:
            raise ValueError(f"call_overhead must be >= 0 seconds, got {call_overhead!r}")
        include = module_names(include_modules, "include_modules")
        exclude = module_names(exclude_modules, "exclude_modules") or []
        options = dict(function_executor_kwargs)
        cfg, _ = resolve_config(config, backend, storage, workers, options)
        section = cfg["lithops"]
        config_include = section.get("include_modules", [])
        config_exclude = list(section.get("exclude_modules") or [])
        # Job data is deleted by shutdown(), synchronously; Lithops' own
        # cleaner would do it later, from a detached process.
        clean_data = bool(cfg["lithops"].get("data_cleaner", True))
        cfg["lithops"]["data_cleaner"] = False
        self._fexec = lithops.FunctionExecutor(config=cfg, **options)
        self._pool = lithops_cf.FunctionExecutor(executor=self._fexec)
        self._track = tracker(self._pool)
        self._backend, self._workers, default_overhead = capacity(self._fexec.config)
        self._billing = billing(self._fexec.config, price)
        self._call_overhead = default_overhead if call_overhead is None else call_overhead
        self._job_kwargs: dict[str, Any] = {"exclude_modules": exclude}
        if execution_timeout is not None:
            self._job_kwargs["timeout"] = execution_timeout
        # Lithops' module manager: off (None), an explicit list, or (by
        # default) the modules found in the job's pickles (_modules).
        self._shipper: ModuleShipper | None = None
        config_off = isinstance(config_include, str) and config_include.lower() == "none"
        if include is None or config_off:
            self._job_kwargs["include_modules"] = None
        elif include or config_include:
            self._job_kwargs["include_modules"] = include
        else:
            self._shipper = ModuleShipper(self._preinstalled, [*exclude, *config_exclude])

        self._intake = Intake("LithopsExecutor")  # shut down?, unfinished futures, lock
        self._releaser: threading.Thread | None = None
        self._jobs = 0
        self._calls = 0
        self._inflight = Calls(self._fexec, self._intake.lock)
        # localhost: abandoned calls stop, a dead call process is reported at once
        self._local = self._inflight.local = _localhost.install(self._fexec, self._inflight.lost)
        # results stay in the executor's Lithops storage, one prefix per compute
        self._stores = ResultStores(self._fexec.storage, self._fexec.internal_storage.bucket)
        self._data = JobData(self._fexec, self._local, clean_data, self._stores)

    # -- what the scheduler reads ------------------------------------------

    def __daskexec_shut_down__(self) -> bool:
        """Whether :meth:`shutdown` was called (the daskexec engine protocol)."""
        return self._intake.closed

    def __daskexec_engine__(self) -> EngineInfo:
        """Describe the Lithops backend to the daskexec scheduler.

        Returns
        -------
        EngineInfo
            ``workers`` from the Lithops config (localhost: its worker
            processes, by default the CPU count; a cloud backend:
            ``max_workers`` times ``worker_processes``), out of process,
            ``call_overhead`` as configured, at most two calls per worker in
            flight, and the ``separate-processes`` and
            ``survives-worker-death`` capabilities, with ``cancel-running`` on
            localhost (:meth:`terminate_workers` kills the calls' processes),
            and a result store in the Lithops storage backend (``store``:
            results stay in storage, see :mod:`daskexec_lithops._store`).
        """
        capabilities = {"separate-processes", "survives-worker-death"}
        if self._local is not None:
            capabilities.add("cancel-running")  # terminate_workers() kills local calls
        return EngineInfo(
            workers=self._workers,
            out_of_process=True,
            call_overhead=self._call_overhead,
            max_inflight=2 * self._workers,
            capabilities=frozenset(capabilities),
            store=self._stores.open,
            name="lithops",
            billing=self._billing,
        )

    @property
    def backend(self) -> str:
        """The Lithops compute backend the calls run on (``"localhost"``, ...)."""
        return self._backend

    @property
    def jobs_submitted(self) -> int:
        """How many Lithops jobs this executor has started (one per batch)."""
        return self._jobs

    @property
    def calls_submitted(self) -> int:
        """How many Lithops calls (function invocations) those jobs held."""
        return self._calls

    def checkpoint(self, name: str) -> Checkpoint:
        """A checkpoint called ``name`` in this executor's Lithops storage.

        Pass it as ``ExecutorScheduler(executor, checkpoint=...)``: the calls
        write each task's result to the storage backend (and read it back on
        a later compute) themselves, as they do the result store; it lives
        under ``daskexec-checkpoints/<name>/`` in the executor's bucket and
        outlives the executor (see :mod:`daskexec_lithops._checkpoint`).
        """
        storage = LithopsCheckpointStorage(
            json.dumps(self._fexec.storage.get_storage_config(), sort_keys=True),
            self._fexec.internal_storage.bucket,
            prefix_for(name),
        )
        return Checkpoint(storage)

    @property
    def lithops_executor(self) -> Any:
        """The ``lithops.FunctionExecutor`` behind this executor (for its stats and plots)."""
        return self._fexec

    # -- submitting ---------------------------------------------------------

    def submit_many(
        self, fn: Callable[[Any], T], payloads: Iterable[Any]
    ) -> list[concurrent.futures.Future[T]]:
        """Run ``fn(payload)`` for every payload, as one Lithops job.

        Parameters
        ----------
        fn
            A picklable callable of one argument.  It is serialized once for
            the whole job.
        payloads
            One call each.

        Returns
        -------
        list of concurrent.futures.Future
            One per payload, in the order given; each completes as soon as its
            own call does.  An empty ``payloads`` starts no job.

        Raises
        ------
        RuntimeError
            If the executor has been shut down.
        """
        payloads = list(payloads)
        items = [{"payload": payload} for payload in payloads]
        return self._run_job(functools.partial(_remote.apply, fn), items, fn, payloads)

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Run ``fn(*args, **kwargs)`` as a one-call Lithops job.

        The call travels as one cloudpickle of ``(fn, args, kwargs)``:
        lambdas, closures and classes defined in ``__main__`` work.
        """
        blob = cloudpickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        return self._run_job(_remote.call, [{"blob": blob}], None, [blob])[0]

    def _run_job(
        self,
        func: Callable[..., Any],
        items: list[dict[str, Any]],
        fn: Any,
        payloads: Sequence[Any],
    ) -> list[concurrent.futures.Future[Any]]:
        self._intake.check()
        if not items:
            return []
        job_kwargs = self._job_kwargs
        if self._shipper is not None:
            modules = self._shipper.modules_for(fn, payloads)
            job_kwargs = {**job_kwargs, "include_modules": modules or None}
        with self._intake.accepting():  # so that shutdown() sees every call
            lithops_futures = self._fexec.map(func, items, **job_kwargs)
            tracked = self._track(lithops_futures)
            self._data.add(lithops_futures)
            self._jobs += 1
            self._calls += len(items)
            return [self._intake.track(f) for f in self._inflight.bridge(tracked)]

    def _preinstalled(self) -> list[str]:
        """The top-level modules the Lithops runtime has (what Lithops never ships)."""
        meta = self._fexec.invoker.select_runtime("modules", None)
        return [name for name, _ in meta.get("preinstalls", [])]

    # -- shutting down ------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; release Lithops once the calls in flight are done.

        Safe to call several times.  ``wait=True`` returns once every call
        has finished, the jobs' data is deleted from storage and Lithops'
        job monitor, invoker and local worker processes are stopped;
        ``wait=False`` does the same in a background thread.  With
        ``cancel_futures=True``, calls still in flight are abandoned: their
        futures are cancelled at once and their local worker processes are
        killed (a cloud function already started runs on to its end, as
        Lithops cannot recall it).
        """
        with self._intake.lock:
            pending = self._intake.close()
            if self._releaser is None:
                self._releaser = threading.Thread(
                    # not a daemon: a script that exits right after shutdown(wait=False)
                    # still stops the calls and deletes their data, as it exits
                    target=self._release,
                    name="daskexec-lithops-shutdown",
                )
                self._releaser.start()
            releaser = self._releaser
        if cancel_futures:
            for outer in pending:
                outer.cancel()  # abandons its call: see _abandon
        if wait:
            releaser.join()

    def terminate_workers(self) -> None:
        """Stop taking work and stop every call in flight now; their futures are cancelled.

        On localhost the calls' processes are killed, or never start.  A cloud
        function already running cannot be recalled: it is abandoned (its
        result is dropped) and runs to its end.  Safe to call several times,
        and after :meth:`shutdown`; what :meth:`shutdown` does besides
        (deleting the jobs' data, stopping Lithops) happens in the background.
        """
        self.shutdown(wait=False, cancel_futures=True)

    def _release(self) -> None:
        # Waits for the tracked calls (each one ends: it finishes, fails, is
        # timed out by Lithops, or was abandoned above), then stops the
        # tracker's threads; it does not own the Lithops executor.  Lithops
        # goes next (killing local worker processes of abandoned calls), so
        # that nothing writes to storage once it is cleaned.
        self._pool.shutdown(wait=True)
        if self._local is not None:
            self._local.close()
        try:
            self._fexec.__exit__(None, None, None)
        except Exception:
            logger.warning("could not stop the Lithops executor", exc_info=True)
        self._stores.close()  # what computes abandoned, or calls wrote after their compute
        self._data.delete_all()

    def __daskexec_compute_done__(self) -> None:
        """Delete the storage of every job whose calls will all write nothing more.

        The scheduler calls this when a compute returns, fails or is
        interrupted, so that a long-lived executor does not pile up job data.
        A call abandoned while still running elsewhere than on localhost
        keeps its job's data until a later compute ends or :meth:`shutdown`.
        Once no job is left, what such calls wrote to the result stores of
        ended computes is deleted too.
        """
        self._data.compute_done()
