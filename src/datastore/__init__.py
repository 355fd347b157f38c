"""datastore: one small API in front of many data stores.

``get``, ``put``, ``delete``, ``contains`` and ``query`` over hierarchical
:class:`Key` names, the same for memory, files, SQLite, Redis, memcached,
MongoDB, PostgreSQL, MySQL, LevelDB, S3 and git, and composable with shims
(caching, namespacing, serialization, logging) and collections (tiered,
sharded, mounted). Importing this package imports no backend driver; each
backend lives in its own module (``datastore.redis``, ``datastore.sql`` ...).
"""

from __future__ import annotations

from . import serialize
from .core import (
    Batch,
    CacheShimDatastore,
    Cursor,
    Datastore,
    DatastoreCollection,
    DictDatastore,
    DirectoryDatastore,
    DirectoryTreeDatastore,
    Filter,
    InterfaceMappingDatastore,
    Key,
    KeyTransformDatastore,
    LoggingDatastore,
    LowercaseKeyDatastore,
    MountDatastore,
    Namespace,
    NamespaceDatastore,
    NestedPathDatastore,
    NullDatastore,
    Order,
    Query,
    SerializerShimDatastore,
    ShardedDatastore,
    ShimDatastore,
    SymlinkDatastore,
    TieredDatastore,
)
from .errors import (
    BackendError,
    ClosedError,
    ConnectionFailed,
    DatastoreError,
    MissingDriver,
    UnknownScheme,
)
from .urls import open, register

__version__ = "0.4.0"

__all__ = [
    "BackendError",
    "Batch",
    "CacheShimDatastore",
    "ClosedError",
    "ConnectionFailed",
    "Cursor",
    "Datastore",
    "DatastoreCollection",
    "DatastoreError",
    "DictDatastore",
    "DirectoryDatastore",
    "DirectoryTreeDatastore",
    "Filter",
    "InterfaceMappingDatastore",
    "Key",
    "KeyTransformDatastore",
    "LoggingDatastore",
    "LowercaseKeyDatastore",
    "MissingDriver",
    "MountDatastore",
    "Namespace",
    "NamespaceDatastore",
    "NestedPathDatastore",
    "NullDatastore",
    "Order",
    "Query",
    "SerializerShimDatastore",
    "ShardedDatastore",
    "ShimDatastore",
    "SymlinkDatastore",
    "TieredDatastore",
    "UnknownScheme",
    "open",
    "register",
    "serialize",
]
