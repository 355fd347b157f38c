"""LevelDBDatastore against plyvel used directly (same ``sync=False`` default)."""

from __future__ import annotations

import shutil
from typing import Any

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads, need


def leveldb_store(ctx: Context) -> Subject:
    try:
        from datastore.leveldb import LevelDBDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.leveldb: {exc}") from exc
    path = ctx.scratch("ldb-store")
    return StoreSubject("LevelDBDatastore", LevelDBDatastore(str(path)),
                        label="plyvel, sync=False (the default), WriteBatch for bulk",
                        cleanup=lambda: shutil.rmtree(path, ignore_errors=True))


class RawPlyvel(Subject):
    """``plyvel.DB``: UTF-8 key strings, JSON values, a WriteBatch for bulk writes."""

    label = "plyvel.DB, sync=False, write_batch for bulk"

    def __init__(self, path: str) -> None:
        plyvel = need("plyvel")
        self.path = path
        self.db = plyvel.DB(path, create_if_missing=True)
        self._get = self.db.get
        self.query = self._query

    def key(self, string: str) -> Any:
        return string.encode()

    def put(self, key: bytes, value: Any) -> None:
        self.db.put(key, dumps(value))

    def get(self, key: bytes) -> Any:
        data = self._get(key)
        return None if data is None else loads(data)

    def contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def delete(self, key: bytes) -> None:
        self.db.delete(key)

    def put_many(self, pairs: list[tuple[bytes, Any]]) -> None:
        with self.db.write_batch() as batch:
            for key, value in pairs:
                batch.put(key, dumps(value))

    def get_many(self, keys: list[bytes]) -> list[Any]:
        get = self._get
        return [None if (d := get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[bytes]) -> None:
        with self.db.write_batch() as batch:
            for key in keys:
                batch.delete(key)

    def _query(self, spec: QuerySpec) -> list[Any]:
        prefix = (spec.collection + ":").encode()
        return spec.apply((k, loads(v)) for k, v in self.db.iterator(prefix=prefix))

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)


def raw_plyvel(ctx: Context) -> Subject:
    return RawPlyvel(str(ctx.scratch("ldb-raw")))
