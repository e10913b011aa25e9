"""What an executor's Lithops jobs wrote to storage, deleted once no call writes more.

Lithops' own data cleaner is a detached process that sleeps between
passes; the executor switches it off and deletes the jobs' data itself:
each job's when the scheduler ends a compute and every call of the job is
over (:meth:`JobData.compute_done`), and everything the executor wrote at
``shutdown`` (:meth:`JobData.delete_all`).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import threading
from typing import Any

from lithops.constants import JOBS_DIR, JOBS_PREFIX, MODULES_DIR

from daskexec_lithops._localhost import LocalCalls
from daskexec_lithops._store import ResultStores

__all__ = ["JobData"]

logger = logging.getLogger("daskexec_lithops")


class JobData:
    """The jobs of one ``lithops.FunctionExecutor`` whose data is not deleted yet."""

    def __init__(
        self, fexec: Any, local: LocalCalls | None, clean: bool, stores: ResultStores
    ) -> None:
        self._fexec = fexec
        self._local = local
        self._clean = clean
        self._stores = stores
        self._backend: str = fexec.config["lithops"]["backend"]
        self._lock = threading.Lock()
        self._jobs: dict[str, list[Any]] = {}  # job key -> its Lithops response futures

    def add(self, lithops_futures: list[Any]) -> None:
        """Remember a job (its ``ResponseFuture`` objects) until its data is deleted."""
        with self._lock:
            self._jobs[lithops_futures[0].job_key] = list(lithops_futures)

    def compute_done(self) -> None:
        """Delete the storage of every job whose calls will all write nothing more.

        Once no job is left, what abandoned calls wrote to the result stores
        of ended computes is deleted too.
        """
        with self._lock:
            jobs = list(self._jobs.items())
        if self._local is not None and self._clean:
            # A call that reported back is over once its process has exited
            # and Lithops has removed its task file: a few milliseconds.
            finishing = [
                (lf.job_key, lf.call_id)
                for _, fs in jobs
                for lf in fs
                if lf.ready or lf.success or lf.done
            ]
            self._local.wait_over(finishing, timeout=5.0)
        ended = [key for key, fs in jobs if all(map(self._call_over, fs))]
        with self._lock:
            for key in ended:
                self._jobs.pop(key, None)
        for key in ended:
            if self._clean:
                try:
                    self._delete_job(key)
                except Exception:
                    logger.warning(
                        "could not delete the data of Lithops job %s", key, exc_info=True
                    )
            if self._local is not None:
                self._local.forget(key)
        with self._lock:
            quiet = not self._jobs
        if quiet:
            # no call can write to the result stores of ended computes any more
            self._stores.tidy()

    def delete_all(self) -> None:
        """Delete everything the executor's jobs wrote: functions, data, results, statuses."""
        if not self._clean:
            return
        try:
            self._delete_all()
        except Exception:
            logger.warning("could not delete the Lithops job data", exc_info=True)

    def _call_over(self, lf: Any) -> bool:
        """Whether a call will write nothing more (its files may be deleted)."""
        if self._local is not None:
            # on localhost: its process is gone and Lithops has removed its task file
            return self._local.over(lf.job_key, lf.call_id)
        # elsewhere: its status is in storage
        return bool(lf.ready or lf.success or lf.done)

    def _delete_job(self, job_key: str) -> None:
        storage = self._fexec.storage
        bucket = self._fexec.internal_storage.bucket
        keys = storage.list_keys(bucket, f"{JOBS_PREFIX}/{job_key}/")
        if keys:
            storage.delete_objects(bucket, keys)
        if self._backend == "localhost":
            shutil.rmtree(os.path.join(JOBS_DIR, job_key), ignore_errors=True)
            shutil.rmtree(os.path.join(MODULES_DIR, job_key), ignore_errors=True)

    def _delete_all(self) -> None:
        executor_id = self._fexec.executor_id
        storage = self._fexec.storage
        bucket = self._fexec.internal_storage.bucket
        # "<id>/" holds the functions, "<id>-<job>/" each job's data; "<id>"
        # alone would also match the executor "<id>0".
        for prefix in (f"{JOBS_PREFIX}/{executor_id}/", f"{JOBS_PREFIX}/{executor_id}-"):
            keys = storage.list_keys(bucket, prefix)
            if keys:
                storage.delete_objects(bucket, keys)
        if self._backend == "localhost":
            for folder in (JOBS_DIR, MODULES_DIR):
                for path in glob.glob(os.path.join(folder, glob.escape(executor_id) + "-*")):
                    shutil.rmtree(path, ignore_errors=True)
