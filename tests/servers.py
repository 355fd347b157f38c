"""Where the test servers are, and what a test does when one is missing.

``scripts/services.sh`` starts every server on 127.0.0.1 and the defaults
below are its addresses; an environment variable of the same name points a
test at another server. A missing server skips its tests locally, but with
``CI=true`` it fails them: in CI nothing may skip.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

DEFAULTS = {
    "DATASTORE_TEST_REDIS": "redis://127.0.0.1:6379/0",
    "DATASTORE_TEST_REDIS_RESTART": "redis://127.0.0.1:6380/0",
    "DATASTORE_TEST_REDIS_CLUSTER": "redis-cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
    "DATASTORE_TEST_MEMCACHED": "memcached://127.0.0.1:11211",
    "DATASTORE_TEST_MONGODB": "mongodb://127.0.0.1:27017/datastore_test",
    "DATASTORE_TEST_POSTGRESQL": "postgresql://datastore:datastore@127.0.0.1:5432/datastore_test",
    "DATASTORE_TEST_MYSQL": "mysql://datastore:datastore@127.0.0.1:3306/datastore_test",
    "DATASTORE_TEST_S3": "s3://datastore-test?endpoint_url=http://127.0.0.1:8333",
}

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _first_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme == "s3":
        endpoint = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)["endpoint_url"]
        parts = urlsplit(endpoint)
        return parts.hostname or "127.0.0.1", parts.port or 80
    netloc = parts.netloc.rsplit("@", 1)[-1].split(",")[0]
    host, _, port = netloc.rpartition(":")
    return host or "127.0.0.1", int(port)


def server_url(name: str) -> str:
    """The URL of test server ``name`` (a DEFAULTS key); skip, or fail in CI, if it is down."""
    url = os.environ.get(name, DEFAULTS[name])
    host, port = _first_address(url)
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as exc:
        message = f"{name}: no server at {host}:{port} ({exc}); run scripts/services.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return url
