"""The package surface: imports, errors, open(), the interface adapter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import datastore
import datastore.core
from datastore import InterfaceMappingDatastore, Key, Query
from datastore.drivers import require
from datastore.errors import DatastoreError, MissingDriver

DRIVERS = [
    "redis", "pymemcache", "pymongo", "psycopg", "pymysql", "plyvel", "boto3", "dulwich", "pylru", "sqlite3",
]


def test_import_loads_no_driver() -> None:
    code = f"import sys, datastore, datastore.core; print(sorted(m for m in {DRIVERS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_core_and_top_level_names_agree() -> None:
    for name in datastore.core.__all__:
        assert getattr(datastore, name) is getattr(datastore.core, name)
    assert (Path(datastore.__file__).parent / "py.typed").exists()


def test_missing_driver_names_the_extra() -> None:
    with pytest.raises(ImportError, match=r"pip install 'datastore-kit\[nosuch\]'") as info:
        require("no_such_driver_module", backend="NoSuchDatastore", extra="nosuch")
    assert isinstance(info.value, MissingDriver) and isinstance(info.value, DatastoreError)
    assert isinstance(info.value.__cause__, ImportError)


def test_register_a_scheme() -> None:
    made: list[str] = []

    def opener(url: str, **options: object) -> datastore.Datastore:
        made.append(url)
        return datastore.DictDatastore()

    datastore.register("unit-test", opener)
    assert isinstance(datastore.open("unit-test://x"), datastore.DictDatastore)
    assert made == ["unit-test://x"]
    with pytest.raises(TypeError):
        datastore.open(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no options"):
        datastore.open("memory://?size=3")


def test_interface_mapping_datastore() -> None:
    class Service:
        def __init__(self) -> None:
            self.data: dict[str, object] = {}

        def fetch(self, key: str) -> object:
            return self.data.get(key)

        def store(self, key: str, value: object) -> None:
            self.data[key] = value

        def remove(self, key: str) -> None:
            del self.data[key]

    service = Service()
    ds = InterfaceMappingDatastore(service, get="fetch", put="store", delete="remove", key=lambda k: k.name)
    ds.put(Key("/a/b"), 1)
    assert service.data == {"b": 1}
    assert ds.get("/x/b") == 1 and ds.contains("/a/b")
    ds.delete("/a/b")
    ds.delete("/a/b")  # absent: the service's KeyError is a no-op here
    assert ds.get("/a/b") is None
    with pytest.raises(ValueError):
        ds.put("/a", None)
    with pytest.raises(NotImplementedError, match="cannot list"):
        ds.query(Query("/"))
