"""In-memory subjects: DictDatastore, a plain ``dict``, and minimalkv's DictStore."""

from __future__ import annotations

from typing import Any

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, dumps, loads, need


def dict_store(ctx: Context) -> Subject:
    from datastore import DictDatastore

    return StoreSubject("DictDatastore", DictDatastore(), label="values kept by reference")


class RawDict(Subject):
    """A plain dict: the floor every in-memory store is measured against."""

    label = "dict (values by reference)"

    def __init__(self) -> None:
        d: dict[str, Any] = {}
        self.d = d
        # The dict's own methods, called directly: nothing of ours is timed.
        self.put = d.__setitem__  # type: ignore[method-assign,assignment]
        self.get = d.get  # type: ignore[method-assign,assignment]
        self.contains = d.__contains__  # type: ignore[method-assign,assignment]
        self.put_many = d.update  # type: ignore[method-assign,assignment]
        self.query = self._query

    def delete(self, key: Any) -> None:
        self.d.pop(key, None)

    def get_many(self, keys: list[Any]) -> list[Any]:
        get = self.d.get
        return [get(k) for k in keys]

    def delete_many(self, keys: list[Any]) -> None:
        pop = self.d.pop
        for k in keys:
            pop(k, None)

    def _query(self, spec: QuerySpec) -> list[Any]:
        prefix = spec.collection + ":"
        return spec.apply((k, v) for k, v in self.d.items() if k.startswith(prefix))


def raw_dict(ctx: Context) -> Subject:
    return RawDict()


class MinimalKV(Subject):
    """minimalkv's in-memory ``DictStore``: bytes values, keys without ``/`` or ``:``.

    The values are handed over already encoded and ``get`` returns the bytes
    undecoded, so only the library's own overhead is measured: the most
    favourable comparison for minimalkv.
    """

    label = "minimalkv.memory.DictStore (bytes, pre-encoded)"

    def __init__(self) -> None:
        memory = need("minimalkv.memory")
        self.kv = memory.DictStore()
        self.put = self.kv.put  # type: ignore[method-assign]
        self.contains = self.kv.__contains__  # type: ignore[method-assign]
        self.delete = self.kv.delete  # type: ignore[method-assign]
        self.query = self._query

    def key(self, string: str) -> Any:
        return string.replace("/", ".").replace(":", "-").lstrip(".")

    def value(self, value: dict[str, Any]) -> Any:
        return dumps(value)

    def decoded(self, stored: Any) -> Any:
        return None if stored is None else loads(stored)

    def get(self, key: Any) -> Any:
        try:
            return self.kv.get(key)
        except KeyError:
            return None

    def _query(self, spec: QuerySpec) -> list[Any]:
        prefix = self.key(spec.collection) + "-"
        kv = self.kv
        return spec.apply((k, loads(kv.get(k))) for k in kv.iter_keys(prefix=prefix))


def minimalkv_store(ctx: Context) -> Subject:
    return MinimalKV()
