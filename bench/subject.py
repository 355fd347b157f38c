"""What the harness measures: a *subject* is a store or a raw driver with the same operations.

Every subject offers ``put get contains delete put_many get_many delete_many``
and, where it can, ``query`` (and ``query_pushdown`` for a raw driver that can
run the query in its engine). The timing loops fetch each operation once and
call it directly, so a store subject exposes the store's own bound methods
(no wrapper layer is timed on our side), while a raw subject writes the few
lines a user of the driver would write.

A factory that cannot build its subject (driver not installed, module not yet
written, server not running) raises :class:`Unavailable`; the harness reports
the reason instead of failing.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from .data import QuerySpec

__all__ = [
    "ROOT",
    "Context",
    "StoreSubject",
    "Subject",
    "Unavailable",
    "dumps",
    "loads",
    "need",
    "server_url",
]

ROOT = Path(__file__).resolve().parent.parent

try:  # the raw baselines serialize like the stores' default: orjson when present
    import orjson as _orjson

    dumps: Callable[[Any], bytes] = _orjson.dumps
    loads: Callable[[Any], Any] = _orjson.loads
except ImportError:  # pragma: no cover - orjson is in the dev extras

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    loads = json.loads


class Unavailable(Exception):
    """This subject cannot run here (missing module, driver or server); the message says why."""


def need(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`Unavailable` naming it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"cannot import {module}: {exc}") from exc


def _server_defaults() -> dict[str, str]:
    """The test servers' URLs, from tests/servers.py (one list for tests and benchmarks)."""
    path = ROOT / "tests" / "servers.py"
    spec = importlib.util.spec_from_file_location("_datastore_test_servers", path)
    if spec is None or spec.loader is None:  # pragma: no cover
        return {}
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    defaults: dict[str, str] = module.DEFAULTS
    return defaults


def server_url(name: str) -> str:
    """The URL of server ``name`` (env var of that name, else the tests' default) if it answers."""
    url = os.environ.get(name) or _server_defaults().get(name)
    if not url:
        raise Unavailable(f"{name}: no URL known")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        parts = urlsplit(query.get("endpoint_url", "http://127.0.0.1:80"))
    netloc = parts.netloc.rsplit("@", 1)[-1].split(",")[0]
    host, _, port = netloc.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 80)), timeout=2):
            pass
    except OSError as exc:
        raise Unavailable(f"{name}: no server at {netloc} ({exc}); run scripts/services.sh") from exc
    return url


@dataclass
class Context:
    """What a factory may use: a private scratch directory and the run's options."""

    tmp: Path
    quick: bool = False

    def scratch(self, name: str) -> Path:
        """A new, empty directory of its own under the run's temporary directory."""
        return Path(tempfile.mkdtemp(prefix=name + "-", dir=self.tmp))


class Subject:
    """One measured thing. Subclasses implement the operations a user of it would call.

    ``role`` is ``store`` (ours), ``raw`` (the driver underneath, the baseline
    of every ratio) or ``peer`` (another library a user might pick instead).
    """

    name = "subject"
    role = "raw"
    #: One line shown in the report: engine settings that matter for fairness.
    label = ""
    #: A store whose query runs in its engine (SQL, find); used by the query targets.
    pushes_down = False

    def key(self, string: str) -> Any:
        """The native form of a key string, built before timing."""
        return string

    def value(self, value: dict[str, Any]) -> Any:
        """The form a value is handed to ``put`` in (the dict itself unless a peer needs bytes)."""
        return value

    def decoded(self, stored: Any) -> Any:
        """What ``get`` returned, as the original dict (for the untimed correctness check)."""
        return stored

    def put(self, key: Any, value: Any) -> None:
        raise NotImplementedError

    def get(self, key: Any) -> Any:
        raise NotImplementedError

    def contains(self, key: Any) -> bool:
        raise NotImplementedError

    def delete(self, key: Any) -> None:
        raise NotImplementedError

    def put_many(self, pairs: list[tuple[Any, Any]]) -> None:
        for key, value in pairs:
            self.put(key, value)

    def get_many(self, keys: list[Any]) -> list[Any]:
        return [self.get(key) for key in keys]

    def delete_many(self, keys: list[Any]) -> None:
        for key in keys:
            self.delete(key)

    #: ``query(spec) -> list of values``; None when the subject cannot list a collection.
    query: Callable[[QuerySpec], list[Any]] | None = None
    #: A raw driver running the same query in its engine (SQL, find); None if it has none.
    query_pushdown: Callable[[QuerySpec], list[Any]] | None = None

    def load(self, pairs: list[tuple[Any, Any]], chunk: int = 1000) -> None:
        """Fill the subject before timing (not timed): bulk writes in chunks."""
        for start in range(0, len(pairs), chunk):
            self.put_many(pairs[start : start + chunk])

    def close(self) -> None:
        """Release the subject and remove what it wrote (server data included)."""


class StoreSubject(Subject):
    """A :class:`datastore.Datastore` as a subject: its bound methods are the operations.

    ``cleanup`` runs after ``store.close()`` (remove a table, a bucket prefix...).
    """

    role = "store"

    def __init__(
        self,
        name: str,
        store: Any,
        *,
        label: str = "",
        pushes_down: bool = False,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        from datastore import Key, Query

        self.name = name
        self.label = label
        self.pushes_down = pushes_down
        self.store = store
        self._Key = Key
        self._Query = Query
        self._cleanup = cleanup
        # Instance attributes shadow the methods: the loops call the store directly.
        self.put = store.put  # type: ignore[method-assign]
        self.get = store.get  # type: ignore[method-assign]
        self.contains = store.contains  # type: ignore[method-assign]
        self.delete = store.delete  # type: ignore[method-assign]
        self.put_many = store.put_many  # type: ignore[method-assign]
        self.get_many = store.get_many  # type: ignore[method-assign]
        self.delete_many = store.delete_many  # type: ignore[method-assign]
        self.query = self._query

    def key(self, string: str) -> Any:
        return self._Key(string)

    def _query(self, spec: QuerySpec) -> list[Any]:
        query = self._Query(self._Key(spec.collection), limit=spec.limit)
        query.filter(spec.field, spec.op, spec.value)
        query.order(("-" if spec.descending else "+") + spec.order_field)
        return list(self.store.query(query))

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            if self._cleanup is not None:
                self._cleanup()

