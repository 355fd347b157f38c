"""The core of datastore: keys, queries, the Datastore contract, shims and collections.

``import datastore.core`` is the classic spelling; every name here is also
importable from ``datastore`` itself. Nothing in the core imports a backend.
"""

from __future__ import annotations

from ..collections import (
    DatastoreCollection,
    MountDatastore,
    ShardedDatastore,
    TieredDatastore,
)
from ..shims import (
    CacheShimDatastore,
    DirectoryDatastore,
    DirectoryTreeDatastore,
    KeyTransformDatastore,
    LoggingDatastore,
    LowercaseKeyDatastore,
    NamespaceDatastore,
    NestedPathDatastore,
    SerializerShimDatastore,
    ShimDatastore,
    SymlinkDatastore,
)
from .datastore import Batch, Datastore
from .interface import InterfaceMappingDatastore
from .key import Key, Namespace
from .memory import DictDatastore, NullDatastore
from .query import Cursor, Filter, Order, Query

__all__ = [
    "Batch",
    "CacheShimDatastore",
    "Cursor",
    "Datastore",
    "DatastoreCollection",
    "DictDatastore",
    "DirectoryDatastore",
    "DirectoryTreeDatastore",
    "Filter",
    "InterfaceMappingDatastore",
    "Key",
    "KeyTransformDatastore",
    "LoggingDatastore",
    "LowercaseKeyDatastore",
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
]
