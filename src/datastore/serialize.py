"""Serializers: how stores that hold bytes turn values into bytes and back.

A serializer is any object with ``dumps(value) -> bytes | str`` and
``loads(data) -> value`` (so the stdlib ``json`` module is one). Stores that
hold bytes take ``serializer=`` and default to :data:`json`, under which
``str``, numbers, bools, ``None`` inside containers, lists and dicts with
``str`` keys round-trip exactly. Anything else is refused with ``TypeError``
*before* a store writes, rather than stored as something else (stdlib json
would silently turn ``{1: 'a'}`` into ``{'1': 'a'}`` and NaN into invalid
JSON). Tuples are written as lists, as in every JSON library.

Pickle is never a default: :data:`pickle` exists only for callers who name
it, since unpickling data from a shared store runs arbitrary code.
"""

from __future__ import annotations

import gc as _gc
import json as _json
import math
import pickle as _pickle
import sys as _sys
from collections.abc import Callable, Iterable, Sequence
from math import isfinite as _isfinite
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from .core.datastore import Datastore

K = TypeVar("K")
#: JSON text as bytes or as str
S = TypeVar("S", bytes, str)

_orjson: Any
try:  # orjson is optional (the ``fast`` extra); the stdlib does the same job more slowly.
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _orjson = None

#: Every ASCII digit maps to "0" and every other byte to " ": a run of 19 digits
#: in the data is then a run of 19 "0" in the translation (one C pass, ~4x
#: faster than a regex scan, and every load pays it).
_DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def _has_long_digits(data: bytes | str) -> bool:
    """True when ``data`` holds a run of 19 digits (an integer orjson might not keep exact).

    UTF-8 encodes every non-ASCII character with bytes above 0x7f, so the
    digits of a str are exactly the digit bytes of its encoding.
    """
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
    elif isinstance(data, (bytes, bytearray)):
        raw = data
    else:
        raw = bytes(data)
    return _LONG_RUN in raw.translate(_DIGIT_MAP)


__all__ = [
    "JSONSerializer",
    "NonSerializer",
    "PickleSerializer",
    "PrettyJSONSerializer",
    "Serializer",
    "Stack",
    "as_bytes_serializer",
    "check_json",
    "encode_items",
    "encode_values",
    "json",
    "map_serializer",
    "msgpack",
    "prettyjson",
    "shim",
]


@runtime_checkable
class Serializer(Protocol):
    """What a serializer offers: ``dumps`` a value to data, ``loads`` it back."""

    def dumps(self, value: Any) -> Any: ...

    def loads(self, data: Any) -> Any: ...


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def _plainly_json(value: Any) -> bool:
    """True when ``value`` is made only of the exact JSON types (no subclasses), finite floats.

    The fast walk every put of a JSON store pays: scalars inside containers
    are checked inline instead of by one call each, and no error path is
    built. False means "not sure": :func:`check_json` then walks the slow way,
    which accepts what this refuses (subclasses) or raises the precise error.
    """
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is float:
        return _isfinite(value)
    if kind is dict:
        items = value.values()
        for key in value:
            if type(key) is not str:
                return False
    elif kind is list or kind is tuple:
        items = value
    else:
        return False
    for item in items:
        item_kind = type(item)
        if item_kind in _PLAIN_SCALARS:
            continue
        if item_kind is float:
            if not _isfinite(item):
                return False
        elif not _plainly_json(item):
            return False
    return True


#: orjson options under which it refuses (TypeError) everything :func:`check_json`
#: might not accept as it is: subclasses of str/int/dict/list, dataclasses and
#: datetimes. Non-str dict keys, sets, bytes and integers beyond 64 bits it
#: refuses anyway.
_ORJSON_STRICT = (
    0 if _orjson is None else
    _orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATACLASS
    | _orjson.OPT_PASSTHROUGH_DATETIME
)
_WRITTEN_SCALARS = frozenset({str, int, bool, type(None)})


def _written_exactly(value: Any) -> bool:
    """True when ``value``, which strict orjson just encoded, holds nothing JSON would change.

    What strict orjson still encodes besides exact JSON types is what this
    walk looks for: enum members and UUIDs (written as their value or text)
    and non-finite floats (written as null). Dict keys need no look: orjson
    refused any that is not a str. The walk reads values only, one type
    test each, so it costs a third less than :func:`check_json`'s.
    """
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is float:
        return _isfinite(value)
    else:
        return kind in _WRITTEN_SCALARS
    for item in items:
        kind = type(item)
        if kind in _WRITTEN_SCALARS:
            continue
        if kind is float:
            if not _isfinite(item):
                return False
        elif kind is dict or kind is list or kind is tuple:
            if not _written_exactly(item):
                return False
        else:
            return False
    return True


#: The types :func:`_all_written_exactly` lets through: JSON's own, exactly (no subclasses).
_EXACT_TYPES = frozenset({str, int, bool, float, type(None), dict, list, tuple})
_NONE = type(None)
#: The type sets of a batch of stored values that :meth:`JSONSerializer.loads_many` joins.
_BYTES = frozenset({bytes})
_STR = frozenset({str})
#: CPython's ``gc.get_referents`` of a dict, list or tuple is exactly its items
#: (a dict's values, and its keys unless all are str), and of a str, number,
#: bool or None nothing: a whole tree level in one C call. Other
#: implementations may answer otherwise, so they take the walk instead.
_LEVEL_WALK = _sys.implementation.name == "cpython"


def _all_written_exactly(values: list[Any], nulls: int) -> bool:
    """True when ``values``, which strict orjson just encoded, hold nothing JSON would change.

    ``nulls`` is how many times ``null`` occurs in their JSON texts. The
    same question as :func:`_written_exactly`, for a bulk write, answered
    level by level in C instead of item by item in Python (0.3 vs 1.0 µs a
    value): each level of every tree at once must hold only exact JSON types
    (enum members, UUIDs and orjson fragments fail here), and the level below
    is ``gc.get_referents`` of this one. Non-finite floats are written as
    ``null``, so the batch may hold a ``null`` only for each ``None``: any
    other ``null`` (or a str containing the text "null") answers False, and
    the caller takes the slow, exact path.
    """
    nones = 0
    level = values
    while level:
        kinds = set(map(type, level))
        if not kinds <= _EXACT_TYPES:
            return False
        if nulls and _NONE in kinds:
            nones += level.count(None)
        level = _gc.get_referents(*level)
    return nulls == nones


def encode_values(serializer: Any, values: list[Any]) -> list[Any]:
    """``serializer.dumps`` of each value: what every bulk write calls.

    Uses the serializer's ``dumps_many`` when it has one (the JSON
    serializer checks the whole batch at once); raises what ``dumps``
    raises for the first value it refuses.
    """
    many = getattr(serializer, "dumps_many", None)
    if many is not None:
        return list(many(values))
    return list(map(serializer.dumps, values))


def encode_items(serializer: Any, pairs: Sequence[tuple[K, Any]]) -> list[tuple[K, Any]]:
    """``(key, serializer.dumps(value))`` of each pair, in order, by :func:`encode_values`."""
    if not pairs:
        return []
    keys, values = zip(*pairs, strict=True)
    return list(zip(keys, encode_values(serializer, list(values)), strict=True))


def check_json(value: Any, path: str = "value") -> None:
    """Raise TypeError unless ``value`` round-trips exactly through JSON.

    Allowed: None, bool, int, finite float, str, list/tuple and dict with
    str keys, nested. The walk is what keeps "never silently change a value"
    true for a JSON store.
    """
    if _plainly_json(value):
        return
    _check_json(value, path)


def _check_json(value: Any, path: str) -> None:
    """The full walk of :func:`check_json`, naming the path of the first bad part."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{path} is {value!r}: JSON cannot hold NaN or infinity")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{path} has a {type(k).__name__} key {k!r}: JSON object keys must be str"
                )
            _check_json(item, f"{path}[{k!r}]")
        return
    raise TypeError(
        f"{path} is a {type(value).__name__}, which JSON cannot hold; convert it to"
        " str/number/list/dict, or give the store another serializer"
    )


class JSONSerializer:
    """Compact UTF-8 JSON; orjson when installed, with the same strict rules either way."""

    def __init__(self, *, indent: int | None = None, sort_keys: bool = False) -> None:
        self.indent = indent
        self.sort_keys = sort_keys
        self._fast = _orjson is not None and indent is None and not sort_keys

    def dumps(self, value: Any) -> bytes:
        if self._fast:
            # Every write pays this: strict orjson first, then one cheap walk for
            # what orjson accepts but JSON would change. Anything unusual takes
            # the full check below, which accepts or names the bad part.
            try:
                data: bytes = _orjson.dumps(value, option=_ORJSON_STRICT)
            except TypeError:
                pass
            else:
                if _written_exactly(value):
                    return data
        check_json(value)
        if self._fast:
            try:
                return _orjson.dumps(value)  # type: ignore[no-any-return]
            except TypeError:  # ints beyond 64 bits: the stdlib handles them
                pass
        text = _json.dumps(
            value,
            ensure_ascii=False,
            allow_nan=False,
            indent=self.indent,
            sort_keys=self.sort_keys,
            separators=(",", ": ") if self.indent is not None else (",", ":"),
        )
        return text.encode("utf-8")

    def dumps_many(self, values: Sequence[Any]) -> list[bytes]:
        """:meth:`dumps` of each value: a bulk write's hot path (see :meth:`_strict_batch`).

        Each text is a right-sized copy of orjson's result (orjson is asked
        for a trailing newline, which the copy leaves off); why, there.
        """
        values = list(values)
        option = _ORJSON_STRICT | (0 if _orjson is None else _orjson.OPT_APPEND_NEWLINE)
        datas = self._strict_batch(values, b"null", lambda dumps: [
            dumps(value, option=option)[:-1] for value in values])
        return [self.dumps(value) for value in values] if datas is None else datas

    def dumps_texts(self, values: Sequence[Any]) -> list[str]:
        """The JSON text of each value as ``str``: :meth:`dumps_many` for stores that bind text.

        SQLite and PostgreSQL take JSON as a text parameter; decoding each
        of orjson's results at once is the right-sized copy
        :meth:`_strict_batch` needs, and saves such a store decoding the
        bytes of :meth:`dumps_many` again.
        """
        values = list(values)
        texts = self._strict_batch(values, "null", lambda dumps: [
            dumps(value, option=_ORJSON_STRICT).decode() for value in values])
        return [self.dumps(value).decode() for value in values] if texts is None else texts

    def _strict_batch(self, values: list[Any], null: S,
                      encode: Callable[[Callable[..., bytes]], list[S]]) -> list[S] | None:
        """``encode(orjson.dumps)``, the texts of ``values``, if they hold exactly what they say.

        None when the fast path does not apply or the batch fails: the
        caller then encodes value by value with :meth:`dumps`, which accepts
        or names the bad value. ``null`` is JSON's null in the texts' type.
        The values are encoded by strict orjson one by one (it has no bulk
        call) and checked all at once by :func:`_all_written_exactly`.

        ``encode`` must keep a right-sized copy of each result, not orjson's
        own bytes: orjson writes into a new 1 KiB buffer and shrinks it in
        place, so a batch that kept its results would pin ~1 KiB of C heap a
        value, each leaving a gap too small for the next buffer. A
        1,000-value write then grew the heap by ~1 MB, which glibc gave back
        to the system after the call and faulted in again on the next one
        (strace: ~5 ``brk`` calls a SQLite ``put_many``, none for sqlite3 by
        hand). With copies, the next value reuses the freed buffer: SQLite
        ``put_many`` went from 0.76x to 0.84x of raw sqlite3 in the benchmark.
        """
        if not (self._fast and _LEVEL_WALK):
            return None
        try:
            texts = encode(_orjson.dumps)
        except TypeError:
            return None
        # Joined with nothing: no JSON text ends with a part of "null" that the
        # next one could complete (none starts with "u" or "l").
        nulls = null[:0].join(texts).count(null)
        return texts if _all_written_exactly(values, nulls) else None

    def loads(self, data: bytes | str) -> Any:
        # orjson reads integers beyond 64 bits as floats; any run of 19+ digits
        # (a possible such integer) goes to the stdlib, which keeps them exact.
        if _orjson is not None:
            # Inlined _has_long_digits for the common cases: every get pays this.
            # Digits become "0" and the rest " ", then one search for a run of
            # 19 (counting the digits first to skip the search cost more than
            # the search saved: most values hold a float, hence 19+ digits).
            if type(data) is bytes:
                if _LONG_RUN not in data.translate(_DIGIT_MAP):
                    return _orjson.loads(data)
            elif isinstance(data, str) and data.isascii():  # what SQL drivers hand back
                if _LONG_RUN not in data.encode("ascii").translate(_DIGIT_MAP):
                    return _orjson.loads(data)
            elif not _has_long_digits(data):
                return _orjson.loads(data)
        return _json.loads(data)

    def loads_many(self, datas: Sequence[bytes | str | None]) -> list[Any]:
        """``loads`` of each item (``None`` stays ``None``): a bulk read's hot path.

        The scan for long digit runs (see :meth:`loads`) costs as much as
        orjson's parse of a small value, mostly in per-call set-up, so it
        runs once over the whole batch, joined by newlines (no run crosses
        one). Only a batch that holds such a run goes item by item.
        """
        if _orjson is not None:
            absent = None in datas
            present = [d for d in datas if d is not None] if absent else datas
            kinds = {*map(type, present)}
            blob: bytes | None = None
            if kinds <= _BYTES:
                blob = b"\n".join(present)  # type: ignore[arg-type]
            elif kinds == _STR:
                blob = "\n".join(present).encode("utf-8", "surrogatepass")  # type: ignore[arg-type]
            if blob is not None and _LONG_RUN not in blob.translate(_DIGIT_MAP):
                loads = _orjson.loads
                if not absent:
                    return list(map(loads, datas))
                return [None if d is None else loads(d) for d in datas]
        return [None if d is None else self.loads(d) for d in datas]

    def __repr__(self) -> str:
        return "prettyjson" if self.indent is not None else "json"


class PrettyJSONSerializer(JSONSerializer):
    """Indented, key-sorted JSON: readable files and useful ``git diff`` output."""

    def __init__(self) -> None:
        super().__init__(indent=2, sort_keys=True)

    def dumps(self, value: Any) -> bytes:
        return super().dumps(value) + b"\n"


class NonSerializer:
    """The identity: values pass through untouched (for stores that hold objects)."""

    def dumps(self, value: Any) -> Any:
        return value

    def loads(self, data: Any) -> Any:
        return data

    def __repr__(self) -> str:
        return "NonSerializer()"


class PickleSerializer:
    """Python pickle. Only for data you trust: loading a pickle runs code."""

    def __init__(self, protocol: int = _pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        try:
            return _pickle.dumps(value, protocol=self.protocol)
        except (_pickle.PicklingError, AttributeError) as exc:
            raise TypeError(f"cannot pickle {type(value).__name__}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        return _pickle.loads(data)


class MsgpackSerializer:
    """MessagePack (the ``msgpack`` package): compact, binary-safe, bytes round-trip."""

    def __init__(self) -> None:
        import msgpack as _msgpack

        self._msgpack = _msgpack

    def dumps(self, value: Any) -> bytes:
        try:
            return self._msgpack.packb(value, use_bin_type=True, strict_types=False)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"msgpack cannot hold this value: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        return self._msgpack.unpackb(data, raw=False, strict_map_key=False)


class Stack:
    """Several serializers applied in order on ``dumps`` and in reverse on ``loads``.

    ``Stack([json, zlib_serializer])`` writes JSON, then compresses it.
    """

    def __init__(self, serializers: Iterable[Any]) -> None:
        self.serializers = list(serializers)

    def dumps(self, value: Any) -> Any:
        for serializer in self.serializers:
            value = serializer.dumps(value)
        return value

    def loads(self, data: Any) -> Any:
        for serializer in reversed(self.serializers):
            data = serializer.loads(data)
        return data


class map_serializer:
    """Applies a serializer to each item of a list value (others pass through)."""

    def __init__(self, serializer: Any) -> None:
        self.serializer = serializer

    def dumps(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [self.serializer.dumps(v) for v in value]
        return self.serializer.dumps(value)

    def loads(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self.serializer.loads(v) for v in data]
        return self.serializer.loads(data)


class _BytesSerializer:
    """Wraps a serializer whose ``dumps`` returns ``str`` so that it returns UTF-8 bytes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def dumps(self, value: Any) -> bytes:
        data = self.inner.dumps(value)
        if isinstance(data, str):
            return data.encode("utf-8")
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data)
        raise TypeError(
            f"serializer {self.inner!r} produced {type(data).__name__}, not bytes or str"
        )

    def loads(self, data: bytes) -> Any:
        return self.inner.loads(data)


class _RawBytes:
    """``serializer=None``: the store holds ``bytes`` values only, as given."""

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeError(
            f"this store was opened with serializer=None and holds bytes only, not"
            f" {type(value).__name__}; encode the value or pass a serializer"
        )

    def loads(self, data: bytes) -> bytes:
        return bytes(data)

    def __repr__(self) -> str:
        return "None"


#: The default serializer of every store that holds bytes.
json = JSONSerializer()
#: Indented, sorted JSON (the git store's default).
prettyjson = PrettyJSONSerializer()
#: Named-only pickle.
pickle = PickleSerializer()


def msgpack() -> MsgpackSerializer:
    """A MessagePack serializer (needs ``pip install msgpack``)."""
    return MsgpackSerializer()


_DEFAULT = object()


def as_bytes_serializer(serializer: Any = _DEFAULT) -> Any:
    """The serializer a bytes-holding store should use for its ``serializer=`` option.

    The default is :data:`json`; ``None`` means raw bytes only; the stdlib
    ``json`` module (or anything whose ``dumps`` returns ``str``) is wrapped
    to produce UTF-8 bytes, and its strictness is added too.
    """
    if serializer is _DEFAULT:
        return json
    if serializer is None:
        return _RawBytes()
    if serializer is _json:
        return json
    if not (callable(getattr(serializer, "dumps", None)) and callable(getattr(serializer, "loads", None))):
        raise TypeError(f"a serializer needs dumps() and loads() methods: {serializer!r}")
    if isinstance(serializer, (JSONSerializer, _RawBytes, _BytesSerializer)):
        return serializer
    return _BytesSerializer(serializer)


def shim(datastore: Datastore, serializer: Any = None) -> Datastore:
    """Wrap ``datastore`` so values are serialized on the way in and out (classic helper)."""
    from .shims.serializer import SerializerShimDatastore

    return SerializerShimDatastore(datastore, serializer=serializer or json)

