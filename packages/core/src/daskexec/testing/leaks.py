"""Which processes a test left running: the suite's leak check, shared by its tests.

A process counts as ours when it descends from the test process through
processes that are new since the snapshot, or through an interpreter-wide
helper (the multiprocessing forkserver spawns pool workers).  Processes
below a long-lived engine process that predates the test (a session's Ray
raylet starting idle workers) belong to that engine, not to the test.
"""

from __future__ import annotations

import os

import psutil

#: Interpreter-wide helpers that outlive every executor by design.
SHARED_HELPERS = (
    "multiprocessing.forkserver",
    "multiprocessing.resource_tracker",
    "multiprocessing.semaphore_tracker",
    "loky.backend.resource_tracker",
)


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _is_helper(cmdline: str) -> bool:
    return any(h in cmdline for h in SHARED_HELPERS)


def snapshot() -> set[int]:
    """The pids of this process's live descendants now."""
    return {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}


def leftovers(before: set[int]) -> dict[int, str]:
    """pid -> command line of live processes of ours that are new since ``before``."""
    me = os.getpid()
    procs: dict[int, psutil.Process] = {}
    for p in psutil.Process(me).children(recursive=True):
        procs[p.pid] = p
    found: dict[int, str] = {}
    for pid, proc in procs.items():
        if pid in before:
            continue
        try:
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmd = _cmdline(proc)
            if _is_helper(cmd):
                continue
            parent = proc.ppid()
            owned = True
            while parent != me and parent in procs:
                if parent in before and not _is_helper(_cmdline(procs[parent])):
                    owned = False
                    break
                parent = procs[parent].ppid()
        except psutil.Error:
            continue
        if owned:
            found[pid] = cmd
    return found
