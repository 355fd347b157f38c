"""Collections: datastores that compose several stores into one."""

from __future__ import annotations

from .collection import DatastoreCollection
from .mount import MountDatastore
from .sharded import ShardedDatastore
from .tiered import TieredDatastore

__all__ = ["DatastoreCollection", "MountDatastore", "ShardedDatastore", "TieredDatastore"]
