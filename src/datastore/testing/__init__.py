"""The conformance suite every datastore runs: ``datastore.testing``.

A backend author subclasses :class:`DatastoreTests` in a pytest module and
supplies one fixture, ``store``, that yields a fresh, empty store::

    import pytest
    from datastore.testing import DatastoreTests
    from my_package import MyStore

    class TestMyStore(DatastoreTests):
        @pytest.fixture
        def store(self):
            ds = MyStore(...)
            yield ds
            ds.close()

and gets every case of the contract: basic operations, absent keys, keys
that must not alias, bulk calls, batches, close, bad input that must write
nothing, every query feature, and a hypothesis-driven *differential* test
that fills the store with random objects and checks random queries against
the naive engine (:mod:`datastore.core.engine`).

Class attributes describe what the store holds, so that one suite fits all:

``holds_any_value``
    True for stores that keep Python objects as they are (DictDatastore):
    the unencodable-value case then checks the object round-trips instead.
``bytes_only``
    True for stores opened with ``serializer=None``: every value used is
    ``bytes`` (queries then have no fields to filter on).
``differential_examples``
    how many random stores the differential test builds (default 60).

The suite needs ``pytest`` and ``hypothesis`` (the ``dev`` extra).
"""

from __future__ import annotations

from .suite import DatastoreTests

__all__ = ["DatastoreTests"]
