"""The library's own exceptions.

Bad input is refused with the builtin ``TypeError``/``ValueError``; what goes
wrong in a store's engine or connection surfaces as a :class:`DatastoreError`
subclass with the driver's exception chained as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ClosedError",
    "ConnectionFailed",
    "DatastoreError",
    "MissingDriver",
    "UnknownScheme",
]


class DatastoreError(Exception):
    """Base of every error this library raises on its own account."""


class BackendError(DatastoreError):
    """The engine behind a store failed; the driver's exception is the ``__cause__``."""


class ConnectionFailed(BackendError):
    """A store could not reach its server (after the reconnect it is allowed)."""


class ClosedError(DatastoreError):
    """The store was closed; open a new one."""


class MissingDriver(DatastoreError, ImportError):
    """A backend's driver is not installed; the message names the extra to install."""

    def __init__(self, backend: str, driver: str, extra: str) -> None:
        super().__init__(
            f"{backend} needs the {driver!r} package: pip install 'datastore-kit[{extra}]'"
        )
        self.backend = backend
        self.driver = driver
        self.extra = extra


class UnknownScheme(DatastoreError, ValueError):
    """``datastore.open`` was given a URL whose scheme no backend registered."""
