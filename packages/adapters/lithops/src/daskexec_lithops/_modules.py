"""Which of the driver's own modules a Lithops job needs: found in its pickles.

Lithops ships with each job the modules its function depends on that the
runtime lacks (its module manager: ``include_modules``, ``exclude_modules``),
found by analysing the job's *function*.  Through daskexec that function is
always an entry point of daskexec, installed on the workers; the user's task
functions travel inside the payloads, as pickles that reference them by
module name, and Lithops does not look into those.  A script importing its
tasks from a module beside it then fails on the workers with
``ModuleNotFoundError``.  So this module looks into the pickles.

Candidates
    The root modules the driver has imported (``sys.modules``) that Lithops
    would ship: not preinstalled in the runtime (the runtime metadata's
    module list, which Lithops uses too), not excluded, and Python source
    that Lithops' ``ModuleDependencyAnalyzer`` finds.  The analyzer also
    gives each candidate's closure: the modules its source imports,
    recursively, that the runtime lacks too.  Both are computed once per
    root.

References
    A pickle refers to a module by a string push holding its name: the
    module operand of ``GLOBAL`` (protocols 0-3), the first of the two
    strings before ``STACK_GLOBAL`` (protocols 4-5), or the argument of
    cloudpickle's ``subimport``.  A later reference to the same module may
    take the string from the memo, but the memo was filled by such a push,
    earlier in the same pickle.  So :func:`refers_to` looks for the
    candidate's name with C-speed ``bytes.find`` and checks, at each
    occurrence, whether an opcode that pushes exactly that name (or a
    submodule of it) precedes it: no unpickling, no walk over the opcodes,
    cheap however many objects or large arrays the pickle holds, and never a
    miss.  It can over-report (a data string that equals a module's name):
    that ships one module more, harmlessly.  A pickle nested in a bytes
    argument (the scheduler sends pickles of pickles) is searched as part
    of the outer bytes.

What a job ships is the union of the closures of the candidates its
function and payloads refer to, passed to Lithops as ``include_modules``.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import cloudpickle
from lithops.libs.multyvac.module_dependency import ModuleDependencyAnalyzer

__all__ = ["ModuleShipper", "refers_to"]

_SHORT_BINUNICODE, _BINUNICODE, _BINUNICODE8 = 0x8C, ord("X"), 0x8D
#: GLOBAL and INST (module and name on two lines), UNICODE (one line).
_LINE_OPS = (ord("c"), ord("i"), ord("V"))
#: Longer strings are data, not module names.
_MAX_NAME = 1024


def refers_to(data: bytes | bytearray, module: str) -> bool:
    """Whether the pickle ``data`` may refer to ``module`` or one of its submodules.

    Never false when the pickle does refer to it; true for a pickle that
    pushes the module's name as a string for some other reason, too.
    """
    name = module.encode()
    find = data.find
    at = find(name)
    while at >= 0:
        if _pushes_name(data, at, name) or _pushes_escaped_name(data, at, name):
            return True
        at = find(name, at + 1)
    return False


_ESCAPE = re.compile(rb"\\u00([0-9a-fA-F]{2})")


def _pushes_escaped_name(data: bytes | bytearray, at: int, name: bytes) -> bool:
    """The same, for a pickle nested as text in a protocol 0 pickle.

    Protocol 0 writes a bytes object as a string in which ``\\``, NUL,
    newline, carriage return and ``\\x1a`` become ``\\u00XX`` escapes: the
    nested pickle's opcodes are then found only after undoing them (a name
    of 10 characters has a newline for its length byte).
    """
    before = bytes(data[max(0, at - 64) : at])
    after = bytes(data[at : at + _MAX_NAME + 8])
    if b"\\u00" not in before and b"\\u00" not in after:
        return False
    head = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), before)
    tail = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), after)
    return _pushes_name(head + tail, len(head), name)


def _pushes_name(data: bytes | bytearray, at: int, name: bytes) -> bool:
    """Whether an opcode pushing ``name`` (or ``name.<sub>``) starts right before ``at``."""
    candidates: list[int] = []  # lengths of the pushed string, per opcode found
    if at >= 2 and data[at - 2] == _SHORT_BINUNICODE:
        candidates.append(data[at - 1])
    if at >= 5 and data[at - 5] == _BINUNICODE:
        candidates.append(int.from_bytes(data[at - 4 : at], "little"))
    if at >= 9 and data[at - 9] == _BINUNICODE8:
        candidates.append(int.from_bytes(data[at - 8 : at], "little"))
    if at >= 1 and data[at - 1] in _LINE_OPS:
        end = data.find(b"\n", at, at + _MAX_NAME)
        if end >= 0:
            candidates.append(end - at)
    n = len(name)
    for length in candidates:
        if length == n:
            return True  # the bytes at `at` are `name` itself
        if n < length <= _MAX_NAME and data[at + n : at + n + 1] == b".":
            return True
    return False


#: Closures by root module, per set of modules not to ship: shared by the
#: executors of a process (the analysis reads and parses source files).
_CLOSURES: dict[frozenset[str], dict[str, frozenset[str] | None]] = {}


def _roots(names: Iterable[str]) -> set[str]:
    return {name.partition(".")[0] for name in names if name}


class ModuleShipper:
    """Decide which modules a Lithops job ships, from its function and payloads.

    Parameters
    ----------
    preinstalled
        Returns the names of the top-level modules the Lithops runtime has
        (its runtime metadata's ``preinstalls``); called once, on first use.
    exclude
        Modules never shipped (``exclude_modules``), nor looked into.
    """

    def __init__(self, preinstalled: Callable[[], Iterable[str]], exclude: Iterable[str]) -> None:
        self._preinstalled = preinstalled
        self._ignore: frozenset[str] | None = None
        self._exclude = _roots(exclude)
        self._closures: dict[str, frozenset[str] | None] = {}
        self._lock = threading.Lock()

    def modules_for(self, fn: Any, payloads: Sequence[Any]) -> list[str]:
        """What to ship for a job that runs ``fn`` on ``payloads``, as ``include_modules``.

        Sorted; a module's file path, or a package's name (Lithops resolves
        a name by opening the module's file, and leaves it open).

        Raises
        ------
        Exception
            Whatever pickling ``fn`` or a payload raises (Lithops would
            raise it as well, submitting the job).
        """
        with self._lock:
            candidates = self._candidates()
            if not candidates:
                return []
            left = dict(candidates)
            seen: set[int] = set()
            for blob in _pickles(fn, payloads):
                if id(blob) in seen:
                    continue
                seen.add(id(blob))
                for root in [r for r in left if refers_to(blob, r)]:
                    del left[root]
                if not left:
                    break
            ship: set[str] = set()
            for root in candidates.keys() - left.keys():
                ship |= candidates[root]
            return sorted(ship)

    def _candidates(self) -> dict[str, frozenset[str]]:
        """The driver's modules Lithops would ship, each with its closure."""
        if self._ignore is None:
            # Lithops is always in its runtime; the rest is what the runtime has.
            self._ignore = frozenset({"lithops", *self._preinstalled(), *self._exclude})
            if len(_CLOSURES) > 8:
                _CLOSURES.clear()
            self._closures = _CLOSURES.setdefault(self._ignore, {})
        found: dict[str, frozenset[str]] = {}
        for root in _roots(list(sys.modules)):
            if root in self._closures:
                closure = self._closures[root]
            else:
                closure = self._closures[root] = self._closure(root)
            if closure:
                found[root] = closure
        return found

    def _closure(self, root: str) -> frozenset[str] | None:
        """``root`` and the modules its source imports that the runtime lacks, or None.

        As ``include_modules`` entries: a module's path, a package's name.
        """
        ignore = self._ignore
        assert ignore is not None
        if root.startswith("__") or root in ignore or root in sys.builtin_module_names:
            return None
        analyzer = ModuleDependencyAnalyzer()
        analyzer.ignore(ignore)
        try:
            analyzer.add(root)
        except Exception:
            return None
        names = analyzer.get_and_clear_names()
        if root not in names:  # not found on sys.path, or not Python source
            return None
        return frozenset(
            path if path.endswith(".py") else os.path.basename(path)
            for path in analyzer.get_and_clear_paths()
        )


#: Values that name no module: not pickled to be searched.
_PLAIN = (str, int, float, bool, type(None))


def _pickles(fn: Any, payloads: Sequence[Any]) -> Iterable[bytes | bytearray]:
    """The pickles a job carries: its function's, and each payload's.

    Bytes are searched as they are (the scheduler's payloads are tuples of
    pickles: the batch's shared functions, the work item); anything else is
    pickled here to be searched, as Lithops will pickle it.
    """
    yield cloudpickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
    for payload in payloads:
        parts = payload if isinstance(payload, (tuple, list)) else (payload,)
        if not all(isinstance(part, (bytes, bytearray, *_PLAIN)) for part in parts):
            yield cloudpickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            continue
        for part in parts:
            if isinstance(part, (bytes, bytearray)):
                yield part
