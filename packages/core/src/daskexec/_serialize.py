"""Serialization of work items: a batch's shared functions travel once.

The tasks of a batch mostly call the same few functions (the same Dask layer,
the same delayed function).  Pickling each work item on its own would
serialize those functions, with everything their closures hold, once per
item.  Instead a :class:`BatchEncoder` pickles every item with a persistent
id for each function, collects the functions in one table, and pickles that
table once; every item of the batch carries the same table bytes, and a
worker unpickles a table once and keeps it for the next items of the batch.

Most of an item is plain data: keys, atoms as arguments, the indices of its
functions in the table.  :meth:`BatchEncoder.encode_parts` pickles such a
part with the C pickler and no Python call per object (the persistent-id
hook is one per object, and was most of a small item's cost); the first
object that is not an atom or a builtin container stops it, and the part is
pickled again as :meth:`BatchEncoder.encode` does.  Nothing therefore
travels by reference that cloudpickle would send by value (a function of
``__main__``): the plain pickle holds no reference to any module.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
import threading
import types
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import cloudpickle

_SHARED_TYPES = (types.FunctionType, functools.partial)
#: The functions of calls (``_worker``) that go to the table: besides the above,
#: builtins and classes, small and common to many tasks.  Any other callable
#: (an instance holding data of its own) travels in the items that use it.
TABLED = frozenset({*_SHARED_TYPES, types.BuiltinFunctionType, type})


def dumps(obj: Any) -> bytes:
    """cloudpickle ``obj`` with the highest protocol."""
    data: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def loads(data: bytes) -> Any:
    """Inverse of :func:`dumps`."""
    return pickle.loads(data)


def _rebuild_exception(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> BaseException:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class _Rebuilt:
    """Pickles as an exception rebuilt without calling its ``__init__``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __reduce__(self) -> tuple[Any, ...]:
        exc = self.exc
        return _rebuild_exception, (type(exc), exc.args, dict(vars(exc)))


def portable_exception(exc: BaseException, tb: str = "") -> Any:
    """What to pickle in place of ``exc`` so that the receiver gets an exception back.

    ``exc`` itself when its pickle loads back; else an object whose pickle
    loads as ``exc`` rebuilt without its ``__init__`` (an ``__init__`` whose
    arguments differ from ``args`` breaks the default pickle); else a
    :class:`~daskexec.errors.RemoteError` with its type name, text and
    traceback ``tb``.  Call it where ``exc`` was raised: the check unpickles
    there, where every class it needs is importable.
    """
    for candidate in (exc, _Rebuilt(exc)):
        try:
            pickle.loads(dumps(candidate))
        except Exception:
            continue
        return candidate
    from daskexec.errors import RemoteError

    kind = type(exc)
    try:
        text = str(exc)
    except Exception:
        text = repr(exc.args)
    return RemoteError(f"{kind.__module__}.{kind.__qualname__}", text, tb)


def _same_function(obj: Any) -> Any:
    """A key shared by plain functions that would behave alike, else None.

    A lambda written once and made anew for every task (in a loop, a
    comprehension) is a new object each time, but with the same code, the
    same module globals, and no closure or attributes of its own, any of
    them does what the others do: the batch's table holds one, instead of
    one pickled function per task.
    """
    if type(obj) is not types.FunctionType or obj.__closure__ or obj.__dict__:
        return None
    key: tuple[Any, ...] = (obj.__code__, id(obj.__globals__), obj.__qualname__, obj.__defaults__)
    if obj.__kwdefaults__:
        key += (tuple(sorted(obj.__kwdefaults__.items())),)
    try:
        hash(key)
    except TypeError:  # an unhashable default value
        return None
    return key


class _ItemPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, encoder: BatchEncoder) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._encoder = encoder

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) in _SHARED_TYPES:
            return self._encoder.index(obj)
        return None


class _NotPlain(Exception):
    pass


class _PlainPickler(pickle.Pickler):
    """The C pickler for atoms and builtin containers only.

    The C pickler saves ``None``, ``bool``, ``int``, ``float``, ``str``,
    ``bytes``, ``bytearray``, ``tuple``, ``list``, ``dict``, ``set`` and
    ``frozenset`` (exact types) itself; it asks ``reducer_override`` about
    anything else, which refuses.
    """

    def reducer_override(self, obj: Any) -> Any:
        raise _NotPlain


class BatchEncoder:
    """Pickle the items of one batch, sharing their functions through one table."""

    def __init__(self) -> None:
        self._table: list[Any] = []
        self._index: dict[int, int] = {}
        self._alike: dict[Any, int] = {}
        #: for each function of the table, the key of a task that uses it (None: unknown)
        self.users: list[Any] = []

    def index(self, obj: Any, user: Any = None) -> int:
        """The place of the function ``obj`` in the table (added if new); ``user``: a task's key."""
        i = self._index.get(id(obj))
        if i is not None:
            return i
        same = _same_function(obj)
        if same is not None:
            i = self._alike.get(same)
            if i is not None:
                return i
        i = len(self._table)
        self._index[id(obj)] = i  # the table keeps obj alive: its id stays its own
        self._table.append(obj)
        self.users.append(user)
        if same is not None:
            self._alike[same] = i
        return i

    def encode(self, item: Any) -> bytes:
        """Pickle ``item``; its functions go to the shared table instead."""
        buf = io.BytesIO()
        _ItemPickler(buf, self).dump(item)
        return buf.getvalue()

    def encode_parts(self, parts: Sequence[Any]) -> bytes:
        """The pickles of ``parts``, one after the other (see :func:`loads_parts`).

        A part of atoms and builtin containers only is pickled plainly by the C
        pickler; any other as :meth:`encode` does.
        """
        out: list[bytes] = []
        for part in parts:
            buf = io.BytesIO()
            try:
                _PlainPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(part)
            except _NotPlain:
                buf = io.BytesIO()
                _ItemPickler(buf, self).dump(part)
            out.append(buf.getvalue())
        return b"".join(out)

    def functions(self) -> list[Any]:
        """The table: every function seen so far, in order."""
        return self._table

    def shared(self) -> bytes:
        """The pickled table of functions, to send with every item of the batch."""
        return dumps(self._table)


class _ItemUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, table: list[Any]) -> None:
        super().__init__(file)
        self._table = table

    def persistent_load(self, pid: Any) -> Any:
        return self._table[pid]


#: Bytes of pickled function tables a worker keeps for the items still to come.
TABLE_CACHE_BYTES = 64 * 2**20

# digest -> (compute token, table, pickled size); most recently used last
_tables: OrderedDict[bytes, tuple[str, list[Any], int]] = OrderedDict()
_tables_lock = threading.Lock()


def _table(compute: str, shared: bytes) -> list[Any]:
    """The unpickled function table ``shared``, cached for the batch's next items.

    A worker keeps tables of the latest compute only (a table's closures may
    hold large data that must not outlive its compute), and at most
    :data:`TABLE_CACHE_BYTES` of them, the table in use always.
    """
    digest = hashlib.blake2b(shared, digest_size=16).digest()
    with _tables_lock:
        cached = _tables.get(digest)
        if cached is not None:
            _tables.move_to_end(digest)
            return cached[1]
    table: list[Any] = pickle.loads(shared)
    with _tables_lock:
        for old in [d for d, entry in _tables.items() if entry[0] != compute]:
            del _tables[old]
        _tables[digest] = (compute, table, len(shared))
        total = sum(entry[2] for entry in _tables.values())
        while total > TABLE_CACHE_BYTES and len(_tables) > 1:
            total -= _tables.popitem(last=False)[1][2]
    return table


def loads_item(compute: str, shared: bytes, blob: bytes) -> Any:
    """Inverse of :meth:`BatchEncoder.encode` given the batch's shared table."""
    return _ItemUnpickler(io.BytesIO(blob), _table(compute, shared)).load()


def loads_parts(compute: str, shared: bytes, blob: bytes, n: int) -> tuple[list[Any], list[Any]]:
    """Inverse of :meth:`BatchEncoder.encode_parts` of ``n`` parts: the parts and the table."""
    table = _table(compute, shared)
    buf = io.BytesIO(blob)
    return [_ItemUnpickler(buf, table).load() for _ in range(n)], table
