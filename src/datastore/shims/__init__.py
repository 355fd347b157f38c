"""Shims: datastores that wrap one child store and change one thing about it."""

from __future__ import annotations

from .cache import CacheShimDatastore
from .directory import DirectoryDatastore, DirectoryTreeDatastore
from .keytransform import (
    KeyTransformDatastore,
    LowercaseKeyDatastore,
    NamespaceDatastore,
    NestedPathDatastore,
)
from .logging import LoggingDatastore
from .serializer import SerializerShimDatastore
from .shim import ShimDatastore
from .symlink import SymlinkDatastore

__all__ = [
    "CacheShimDatastore",
    "DirectoryDatastore",
    "DirectoryTreeDatastore",
    "KeyTransformDatastore",
    "LoggingDatastore",
    "LowercaseKeyDatastore",
    "NamespaceDatastore",
    "NestedPathDatastore",
    "SerializerShimDatastore",
    "ShimDatastore",
    "SymlinkDatastore",
]
