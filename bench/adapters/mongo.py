"""MongoDatastore against pymongo doing the same document work, each in a database of its own.

The store keeps a dict value as the document itself (``_id`` = the key
string), so the raw baseline does exactly that: ``replace_one(upsert=True)``,
``find_one``, ``delete_one``, and unordered ``bulk_write`` / ``$in`` for bulk.
Its pushed-down query is the ``find(filter, sort, limit)`` a user would write.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, Unavailable, need, server_url

STORE_DB = "datastore_bench_store"
RAW_DB = "datastore_bench_raw"


def _client_url() -> str:
    """The test server's URL without its database (the benchmark uses databases of its own)."""
    parts = urlsplit(server_url("DATASTORE_TEST_MONGODB"))
    return urlunsplit(parts._replace(path="/"))


def mongo_store(ctx: Context) -> Subject:
    url = _client_url()
    pymongo = need("pymongo")
    try:
        from datastore.mongo import MongoDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.mongo: {exc}") from exc
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    client.drop_database(STORE_DB)
    store = MongoDatastore(client[STORE_DB])

    def cleanup() -> None:
        client.drop_database(STORE_DB)
        client.close()

    return StoreSubject("MongoDatastore", store, pushes_down=True,
                        label="dict values as documents, _id = key string", cleanup=cleanup)


class RawPymongo(Subject):
    """pymongo on one collection: documents ``{_id: key, **value}``, acknowledged writes."""

    label = "pymongo, replace_one(upsert) / find_one / bulk_write(ordered=False) / $in"

    def __init__(self) -> None:
        pymongo = need("pymongo")
        self.pymongo = pymongo
        self.client = pymongo.MongoClient(_client_url(), serverSelectionTimeoutMS=5000)
        self.client.drop_database(RAW_DB)
        self.coll = self.client[RAW_DB]["objects"]
        self.query = self._query
        self.query_pushdown = self._pushdown

    def put(self, key: str, value: Any) -> None:
        self.coll.replace_one({"_id": key}, {"_id": key, **value}, upsert=True)

    def get(self, key: str) -> Any:
        document = self.coll.find_one({"_id": key})
        if document is None:
            return None
        del document["_id"]
        return document

    def contains(self, key: str) -> bool:
        return self.coll.find_one({"_id": key}, projection={"_id": 1}) is not None

    def delete(self, key: str) -> None:
        self.coll.delete_one({"_id": key})

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        replace = self.pymongo.ReplaceOne
        self.coll.bulk_write([replace({"_id": k}, {"_id": k, **v}, upsert=True)
                              for k, v in pairs], ordered=False)

    def get_many(self, keys: list[str]) -> list[Any]:
        found = {}
        for document in self.coll.find({"_id": {"$in": keys}}):
            found[document.pop("_id")] = document
        return [found.get(k) for k in keys]

    def delete_many(self, keys: list[str]) -> None:
        self.coll.delete_many({"_id": {"$in": keys}})

    def _query(self, spec: QuerySpec) -> list[Any]:
        pairs = []
        for document in self.coll.find({}):
            key = document.pop("_id")
            pairs.append((key, document))
        return spec.apply(pairs)

    def _pushdown(self, spec: QuerySpec) -> list[Any]:
        op = {">=": "$gte", ">": "$gt", "<": "$lt", "<=": "$lte", "=": "$eq"}[spec.op]
        cursor = self.coll.find(
            {spec.field: {op: spec.value}}, projection={"_id": 0},
            sort=[(spec.order_field, -1 if spec.descending else 1), ("_id", 1)],
            limit=spec.limit,
        )
        return list(cursor)

    def close(self) -> None:
        self.client.drop_database(RAW_DB)
        self.client.close()


def raw_pymongo(ctx: Context) -> Subject:
    return RawPymongo()
