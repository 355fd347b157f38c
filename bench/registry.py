"""THE table of what the benchmark measures: one group per store, with its raw driver and peers.

Adding a store means writing a small factory in :mod:`bench.adapters` and one
:class:`~bench.harness.Entry` line here. A factory whose module, driver or
server is missing raises :class:`~bench.subject.Unavailable` and the run
reports it instead of failing.
"""

from __future__ import annotations

from .adapters import aws, filesystem, git, leveldb, lru, memcached, memory, mongo, redis, sql, sqlite
from .harness import Entry, Group

__all__ = ["GROUPS", "find"]

GROUPS: list[Group] = [
    Group("dict", "DictDatastore vs dict vs minimalkv", [
        Entry("DictDatastore", "store", memory.dict_store),
        Entry("dict", "raw", memory.raw_dict),
        Entry("minimalkv", "peer", memory.minimalkv_store),
    ], ops=20000, bulk_calls=20, aliases=("memory",)),
    Group("lru", "LRUCacheDatastore vs pylru", [
        Entry("LRUCacheDatastore", "store", lru.lru_store),
        Entry("pylru", "raw", lru.raw_pylru),
    ], ops=20000, bulk_calls=20, aliases=("pylru",)),
    Group("sqlite", "SQLiteDatastore vs sqlite3 vs diskcache vs sqlitedict", [
        Entry("SQLiteDatastore", "store", sqlite.sqlite_store),
        Entry("SQLiteDatastore(indexes=score)", "store", sqlite.sqlite_indexed_store),
        Entry("sqlite3", "raw", sqlite.raw_sqlite),
        Entry("diskcache", "peer", sqlite.diskcache_store),
        Entry("sqlitedict", "peer", sqlite.sqlitedict_store),
        Entry("sqlite3+index", "peer", sqlite.indexed_sqlite),
        Entry("sqlite3+layout", "peer", sqlite.layout_sqlite),
        Entry("sqlite3+layout+index", "peer", sqlite.layout_indexed_sqlite),
    ], ops=2000, bulk_calls=16),
    Group("filesystem", "FileSystemDatastore vs plain files (temp + rename)", [
        Entry("FileSystemDatastore", "store", filesystem.fs_store),
        Entry("files", "raw", filesystem.raw_files),
    ], ops=500, bulk_calls=1, aliases=("fs", "file")),
    Group("leveldb", "LevelDBDatastore vs plyvel", [
        Entry("LevelDBDatastore", "store", leveldb.leveldb_store),
        Entry("plyvel", "raw", leveldb.raw_plyvel),
    ], ops=5000, bulk_calls=5),
    Group("redis", "RedisDatastore vs redis-py", [
        Entry("RedisDatastore", "store", redis.redis_store),
        Entry("RedisDatastore(index=False)", "store", redis.redis_store_no_index),
        Entry("redis-py", "raw", redis.raw_redis),
        Entry("redis-py+index", "peer", redis.indexed_redis),
    ], ops=2000, bulk_calls=5),
    Group("memcached", "MemcachedDatastore vs pymemcache", [
        Entry("MemcachedDatastore", "store", memcached.memcached_store),
        Entry("pymemcache", "raw", memcached.raw_pymemcache),
        Entry("pymemcache+index", "peer", memcached.indexed_pymemcache),
    ], ops=2000, bulk_calls=8),
    Group("mongo", "MongoDatastore vs pymongo", [
        Entry("MongoDatastore", "store", mongo.mongo_store),
        Entry("pymongo", "raw", mongo.raw_pymongo),
    ], ops=200, bulk_calls=4, max_size=1000, max_repeats=5, aliases=("mongodb",),
       note="the test server is SecantusDB, a MongoDB-wire server written in Python whose "
            "writes slow down with the collection (put: 1.5k/s at 1k objects, 60/s at 10k, "
            "raw pymongo alike): sizes above 1,000 objects are skipped, 5 repeats at most"),
    Group("postgresql", "SQLDatastore (PostgreSQL) vs psycopg", [
        Entry("SQLDatastore", "store", sql.postgresql_store),
        Entry("SQLDatastore(indexes=score)", "store", sql.postgresql_indexed_store),
        Entry("psycopg", "raw", sql.raw_psycopg),
        Entry("psycopg+index", "peer", sql.indexed_psycopg),
        Entry("psycopg+layout", "peer", sql.layout_psycopg),
        Entry("psycopg+layout+index", "peer", sql.layout_indexed_psycopg),
    ], ops=2000, bulk_calls=6, aliases=("postgres", "pg")),
    Group("mysql", "SQLDatastore (MySQL/MariaDB) vs PyMySQL", [
        Entry("SQLDatastore", "store", sql.mysql_store),
        Entry("SQLDatastore(indexes=score)", "store", sql.mysql_indexed_store),
        Entry("PyMySQL", "raw", sql.raw_pymysql),
        Entry("PyMySQL+layout", "peer", sql.layout_pymysql),
        Entry("PyMySQL+layout+index", "peer", sql.layout_indexed_pymysql),
    ], ops=2000, bulk_calls=6, aliases=("mariadb",)),
    Group("s3", "S3Datastore vs boto3", [
        Entry("S3Datastore", "store", aws.s3_store),
        Entry("boto3", "raw", aws.raw_boto3),
    ], ops=100, bulk_calls=1, max_size=1000, max_repeats=3, aliases=("aws",),
       note="object storage at ~2 ms a request: sizes above 1,000 objects are skipped "
            "(loading 100k objects takes many minutes), 3 repeats at most"),
    Group("git", "GitDatastore vs dulwich by hand", [
        Entry("GitDatastore", "store", git.git_store),
        Entry("dulwich", "raw", git.raw_dulwich),
    ], ops=20, bulk_calls=1, max_size=1000, max_repeats=3,
       note="every put is a commit; sizes above 1,000 objects are skipped"),
]


def find(names: list[str]) -> list[Group]:
    """The groups named (by name or alias), in table order; ValueError for an unknown name."""
    wanted = {n.strip().lower() for n in names if n.strip()}
    known = {g.name: g for g in GROUPS}
    for g in GROUPS:
        for alias in g.aliases:
            known.setdefault(alias, g)
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ValueError(f"unknown store(s) {', '.join(unknown)}; known: "
                         f"{', '.join(g.name for g in GROUPS)}")
    chosen = {known[n].name for n in wanted}
    return [g for g in GROUPS if g.name in chosen]
