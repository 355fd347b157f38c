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

import json as _json
import math
import pickle as _pickle
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .core.datastore import Datastore

_orjson: Any
try:  # orjson is optional (the ``fast`` extra); the stdlib does the same job more slowly.
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _orjson = None

_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_STR = re.compile(r"[0-9]{19}")


def _has_long_digits(data: bytes | str) -> bool:
    """True when ``data`` holds a run of 19 digits (an integer orjson might not keep exact)."""
    pattern = _LONG_DIGITS_STR if isinstance(data, str) else _LONG_DIGITS_BYTES
    return pattern.search(data) is not None  # type: ignore[arg-type]

__all__ = [
    "JSONSerializer",
    "NonSerializer",
    "PickleSerializer",
    "PrettyJSONSerializer",
    "Serializer",
    "Stack",
    "as_bytes_serializer",
    "check_json",
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


def check_json(value: Any, path: str = "value") -> None:
    """Raise TypeError unless ``value`` round-trips exactly through JSON.

    Allowed: None, bool, int, finite float, str, list/tuple and dict with
    str keys, nested. The walk is what keeps "never silently change a value"
    true for a JSON store.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{path} is {value!r}: JSON cannot hold NaN or infinity")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{path} has a {type(k).__name__} key {k!r}: JSON object keys must be str"
                )
            check_json(item, f"{path}[{k!r}]")
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

    def loads(self, data: bytes | str) -> Any:
        # orjson reads integers beyond 64 bits as floats; any run of 19+ digits
        # (a possible such integer) goes to the stdlib, which keeps them exact.
        if _orjson is not None and not _has_long_digits(data):
            return _orjson.loads(data)
        return _json.loads(data)

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

