"""Importing a backend's driver, with an error that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDriver

__all__ = ["require"]


def require(module: str, *, backend: str, extra: str) -> ModuleType:
    """Import ``module`` (a driver such as ``redis``) or raise :class:`MissingDriver`.

    ``MissingDriver`` is an ``ImportError`` whose message reads
    ``pip install 'datastore-kit[EXTRA]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDriver(backend, module.split(".")[0], extra) from exc
