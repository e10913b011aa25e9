"""The simulator's virtual clock: the driver's own CPU time, plus jumps while it idles.

Virtual time must contain what the driver really spends (building work
items, serializing them, handling results), because that is where a
scheduler stops keeping a thousand workers busy, and it must skip what the
driver spends waiting, so that a simulated hour runs in seconds.  So the
clock advances by the CPU time of the *driver threads* (the threads that
made the executor or submitted to it), read from each thread's own CPU clock
(``time.pthread_getcpuclockid``), so that neither the simulator thread that
runs the work items, nor NumPy's threads, nor any other process on a loaded
machine counts.  When the driver idles, the simulator moves the clock to
its next event (:meth:`VirtualClock.jump_to`).

Where per-thread CPU clocks do not exist (macOS, Windows) the driver's time
is the process's CPU time minus the simulator thread's.

With ``follow_driver=False`` the driver costs no virtual time at all: only
jumps move the clock, and a simulation whose work has fixed costs is exactly
reproducible.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

__all__ = ["VirtualClock", "thread_state"]

_HAS_THREAD_CLOCKS = hasattr(time, "pthread_getcpuclockid") and sys.platform.startswith("linux")


class _Driver:
    """One driver thread and the CPU time last read from its clock."""

    __slots__ = ("clock_id", "last", "native_id", "thread")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.native_id = thread.native_id
        # (CPU clock ids are negative numbers on Linux)
        self.clock_id: int | None = None
        if _HAS_THREAD_CLOCKS and thread.ident is not None:
            self.clock_id = time.pthread_getcpuclockid(thread.ident)
        self.last = 0.0

    def read(self) -> float:
        if self.clock_id is not None and self.thread.is_alive():
            with contextlib.suppress(OSError):  # it ended between the two calls
                self.last = time.clock_gettime(self.clock_id)
        return self.last


class VirtualClock:
    """Seconds of simulated time (see the module docstring).

    Parameters
    ----------
    follow_driver
        Whether the driver threads' CPU time advances the clock.
    """

    def __init__(self, follow_driver: bool = True) -> None:
        self.follow_driver = follow_driver
        self._drivers: dict[int, _Driver] = {}
        self._offset = 0.0
        self._floor = 0.0
        self._lock = threading.Lock()
        self._sim_cpu = 0.0  # the simulator thread's CPU time (fallback only)
        self._sim_ident: int | None = None
        self.jumped = 0.0  # seconds skipped while the driver idled
        self.jumps = 0

    # -- threads ----------------------------------------------------------------

    def watch(self, thread: threading.Thread | None = None) -> None:
        """Count ``thread``'s CPU time (default: the calling thread) from now on."""
        thread = thread or threading.current_thread()
        ident = thread.ident
        if ident is None or ident in self._drivers or ident == self._sim_ident:
            return
        with self._lock:
            before = self.now()
            self._drivers[ident] = _Driver(thread)
            # the new thread's past CPU time is not a jump of the clock
            self._offset += before - self.now()

    def watching(self, ident: int) -> bool:
        """Whether the thread ``ident`` is a driver thread."""
        return ident in self._drivers

    def simulator_started(self) -> None:
        """Called by the simulator thread when it starts."""
        self._sim_ident = threading.get_ident()

    def simulator_tick(self) -> None:
        """Called by the simulator thread now and then (the fallback needs its CPU time)."""
        if not _HAS_THREAD_CLOCKS:
            self._sim_cpu = time.thread_time()

    # -- reading ----------------------------------------------------------------

    def driver_cpu(self) -> float:
        """CPU seconds the driver threads have spent (since they were watched)."""
        if not _HAS_THREAD_CLOCKS:
            return time.process_time() - self._sim_cpu
        return sum(d.read() for d in list(self._drivers.values()))

    def now(self) -> float:
        """The virtual time, in seconds."""
        if not self.follow_driver:
            return self._offset
        # never below the last jump's target, whatever the rounding of the sum
        return max(self._floor, self.driver_cpu() + self._offset)

    def jump_to(self, t: float) -> None:
        """Move the clock forward to ``t`` (never backwards)."""
        with self._lock:
            now = self.now()
            if t > now:
                # (without the driver's time, the offset is the time itself:
                # set, not added to, so that rounding cannot leave it below t)
                self._offset = t if not self.follow_driver else self._offset + t - now
                self._floor = t
                self.jumped += t - now
                self.jumps += 1

    def drivers_running(self) -> bool:
        """Whether a driver thread is running or runnable right now (Linux; else ``False``)."""
        return any(
            thread_state(d.native_id) in ("R", "D")
            for d in list(self._drivers.values())
            if d.native_id is not None and d.thread.is_alive()
        )


def thread_state(native_id: int) -> str:
    """The scheduler state of a thread of this process (``R``, ``S``, ``D``...), or ``""``.

    Read from ``/proc/self/task/<tid>/stat`` on Linux; ``""`` elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return ""
    try:
        with open(f"/proc/self/task/{native_id}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    end = stat.rfind(b")")
    return stat[end + 2 : end + 3].decode() if end >= 0 else ""
