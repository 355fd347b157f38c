"""S3Datastore against a real S3 server (SeaweedFS from scripts/services.sh)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

pytest.importorskip("boto3")

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

import datastore
from datastore import Key, Query
from datastore.aws import S3Datastore, from_url
from datastore.corrupt import CorruptValueError
from datastore.errors import BackendError, ClosedError, ConnectionFailed, DatastoreError
from datastore.testing import DatastoreTests
from servers import server_url


def credentials() -> dict[str, str]:
    """The test server accepts any key; use the environment's when it has one."""
    options = {"region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(aws_access_key_id="any", aws_secret_access_key="any")
    return options


@pytest.fixture(scope="module")
def s3_url() -> str:
    return server_url("DATASTORE_TEST_S3")


@pytest.fixture(scope="module")
def raw(s3_url: str) -> Iterator[Any]:
    """A plain boto3 client, to look at what the store wrote and to clean up."""
    client = boto3.client(
        "s3", endpoint_url=from_url(s3_url, **credentials()).client.meta.endpoint_url, **credentials()
    )
    yield client
    client.close()


def with_prefix(url: str, prefix: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + prefix, parts.query, ""))


def remove_prefix(raw: Any, bucket: str, prefix: str) -> None:
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names = [{"Key": entry["Key"]} for entry in page.get("Contents", ())]
        if names:
            raw.delete_objects(Bucket=bucket, Delete={"Objects": names, "Quiet": True})


def object_names(raw: Any, bucket: str, prefix: str) -> list[str]:
    names: list[str] = []
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names.extend(entry["Key"] for entry in page.get("Contents", ()))
    return names


@pytest.fixture
def s3(s3_url: str, raw: Any) -> Iterator[S3Datastore]:
    """A fresh empty store: a unique prefix per test, removed afterwards."""
    prefix = "test-" + uuid.uuid4().hex[:12]
    store = datastore.open(with_prefix(s3_url, prefix), **credentials())
    assert isinstance(store, S3Datastore)
    yield store
    store.close()
    remove_prefix(raw, store.bucket, store.prefix)


class TestS3Conformance(DatastoreTests):
    @pytest.fixture
    def store(self, s3: S3Datastore) -> Iterator[S3Datastore]:
        yield s3


class TestS3RawBytes(DatastoreTests):
    bytes_only = True
    differential_examples = 10

    @pytest.fixture
    def store(self, s3_url: str, raw: Any) -> Iterator[S3Datastore]:
        prefix = "test-" + uuid.uuid4().hex[:12]
        store = datastore.open(with_prefix(s3_url, prefix), serializer=None, **credentials())
        assert isinstance(store, S3Datastore)
        yield store
        store.close()
        remove_prefix(raw, store.bucket, store.prefix)


# -- layout --------------------------------------------------------------------------


def test_object_names_follow_the_shared_key_path(s3: S3Datastore, raw: Any) -> None:
    s3.put("/Comedy/MontyPython/Actor:JohnCleese", {"age": 84})
    s3.put("/a", 1)
    s3.put("/a/b", 2)
    s3.put("/a/b:", 3)
    names = sorted(n[len(s3.prefix) :] for n in object_names(raw, s3.bucket, s3.prefix))
    assert names == sorted(["Comedy/MontyPython/Actor:JohnCleese.data", "a.data", "a/b.data", "a/b:.data"])
    body = raw.get_object(Bucket=s3.bucket, Key=s3.prefix + "Comedy/MontyPython/Actor:JohnCleese.data")
    assert body["ContentType"] == "application/json"
    assert json.loads(body["Body"].read()) == {"age": 84}


def test_foreign_objects_are_not_listed(s3: S3Datastore, raw: Any) -> None:
    for name in ("README", "a%41.data", "%ff.data", "x%zz.data", "sub/.hidden.data"):
        raw.put_object(Bucket=s3.bucket, Key=s3.prefix + name, Body=b"1")
    s3.put("/aA", 2)
    assert list(s3.query(Query("/", recursive=True).order("x")).items()) == [(Key("/aA"), 2)]


def test_prefixes_isolate_stores(s3_url: str, raw: Any) -> None:
    base = "test-" + uuid.uuid4().hex[:12]
    one = datastore.open(with_prefix(s3_url, base + "/p"), **credentials())
    two = datastore.open(with_prefix(s3_url, base + "/pq"), **credentials())
    try:
        one.put("/x", 1)
        two.put("/x", 2)
        assert one.get("/x") == 1 and two.get("/x") == 2
        assert list(one.query(Query("/", recursive=True))) == [1]
        assert list(two.query(Query("/", recursive=True))) == [2]
    finally:
        one.close()
        two.close()
        remove_prefix(raw, "datastore-test", base + "/")


def test_key_too_long_for_an_object_name_is_refused(s3: S3Datastore) -> None:
    key = Key(["n" * 200] * 6)  # each namespace fits, the whole name does not
    with pytest.raises(ValueError, match="1024"):
        s3.put(key, 1)
    assert s3.get(key) is None
    assert not s3.contains(key)


# -- pagination, bulk, large values -------------------------------------------------------


def test_queries_and_bulk_deletes_cross_the_page_boundary(s3: S3Datastore, raw: Any) -> None:
    count = 1205  # ListObjectsV2 and DeleteObjects both stop at 1,000 per call
    items = {Key(f"/many/i{n:05d}"): {"n": n} for n in range(count)}
    items[Key("/many/sub/deep")] = {"n": -1}
    items[Key("/many:typed")] = {"n": -2}
    s3.put_many(items)

    keys = list(s3.query(Query("/many", keys_only=True)))
    assert len(keys) == count + 1  # the collection holds /many/iNNNNN and /many:typed
    assert len(set(keys)) == len(keys)
    recursive = list(s3.query(Query("/many", recursive=True, keys_only=True)))
    assert len(recursive) == count + 2
    top = list(s3.query(Query("/many").filter("n", ">=", 1200).order("-n")))
    assert [v["n"] for v in top] == [1204, 1203, 1202, 1201, 1200]
    page = list(s3.query(Query("/many", offset=1100, limit=50).order("n")))
    assert [v["n"] for v in page] == list(range(1099, 1149))  # after -2 and 0..1098

    s3.delete_many(items)
    assert object_names(raw, s3.bucket, s3.prefix) == []
    assert list(s3.query(Query("/", recursive=True))) == []


def test_get_many_is_aligned_and_concurrent_safe(s3: S3Datastore) -> None:
    keys = [Key(f"/g/k{n}") for n in range(120)]
    s3.put_many((k, n) for n, k in enumerate(keys) if n % 3)
    got = s3.get_many([*keys, "/", Key("/g/absent")])
    assert got == [(n if n % 3 else None) for n in range(120)] + [None, None]


def test_large_value_uploads_in_parts(s3: S3Datastore, s3_url: str, raw: Any) -> None:
    blob = os.urandom(9 * 1024 * 1024 + 17)
    store = datastore.open(with_prefix(s3_url, s3.prefix + "raw"), serializer=None, **credentials())
    try:
        store.put("/big", blob)
        assert store.get("/big") == blob
        head = raw.head_object(Bucket=s3.bucket, Key=s3.prefix + "raw/big.data")
        assert head["ContentLength"] == len(blob)
        assert "-" in head["ETag"]  # a multipart upload's ETag reads "<md5>-<parts>"
    finally:
        store.close()
    text = "x" * (8 * 1024 * 1024)
    s3.put_many([("/big-json", {"text": text}), ("/small", 1)])
    assert s3.get("/big-json") == {"text": text}


# -- errors must not read as "absent" ------------------------------------------------------


def test_missing_bucket_raises_instead_of_reading_absent(s3_url: str) -> None:
    parts = urlsplit(s3_url)
    bucket = "datastore-no-such-bucket-" + uuid.uuid4().hex[:8]
    url = urlunsplit((parts.scheme, bucket, "/p", parts.query, ""))
    store = datastore.open(url, **credentials())
    try:
        for call in (
            lambda: store.get("/a"),
            lambda: store.contains("/a"),
            lambda: store.put("/a", 1),
            lambda: list(store.query(Query("/"))),
            lambda: store.get_many(["/a", "/b"]),
        ):
            with pytest.raises(BackendError) as info:
                call()
            assert isinstance(info.value.__cause__, ClientError)
    finally:
        store.close()


def test_unreachable_server_raises_connection_failed() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Datastore(
        "datastore-test",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
        **credentials(),
    )
    try:
        for call in (lambda: store.get("/a"), lambda: store.contains("/a"), lambda: store.put("/a", 1)):
            with pytest.raises(ConnectionFailed) as info:
                call()
            assert isinstance(info.value.__cause__, BotoCoreError)
            assert isinstance(info.value, DatastoreError)
    finally:
        store.close()


def test_undecodable_object_raises_instead_of_reading_absent(s3: S3Datastore, raw: Any) -> None:
    raw.put_object(Bucket=s3.bucket, Key=s3.prefix + "bad.data", Body=b"{not json")
    with pytest.raises(CorruptValueError, match=r"bad\.data"):
        s3.get("/bad")
    with pytest.raises(CorruptValueError):
        list(s3.query(Query("/")))
    assert s3.contains("/bad")


# -- options, URLs, lifecycle ----------------------------------------------------------------


def test_from_url_options(s3_url: str) -> None:
    parts = urlsplit(s3_url)
    query = parts.query + "&region=eu-west-1&max_workers=3&serializer=none"
    url = urlunsplit((parts.scheme, parts.netloc, "/a/b/", query, ""))
    store = datastore.open(url, aws_access_key_id="any", aws_secret_access_key="any")
    try:
        assert isinstance(store, S3Datastore)
        assert store.bucket == parts.netloc
        assert store.prefix == "a/b/"
        assert store.max_workers == 3
        assert store.client.meta.region_name == "eu-west-1"
        with pytest.raises(TypeError, match="bytes only"):
            store.put("/k", "text")  # serializer=none: raw bytes
    finally:
        store.close()
    with pytest.raises(ValueError, match="unknown option"):
        datastore.open(s3_url + "&colour=blue")
    with pytest.raises(ValueError, match="credentials"):
        datastore.open("s3://key:secret@bucket/p")
    with pytest.raises(ValueError, match="max_workers"):
        datastore.open("s3://bucket?max_workers=many")
    with pytest.raises(TypeError, match="not both"):
        S3Datastore("bucket", client=object(), endpoint_url="http://127.0.0.1:1")
    with pytest.raises(ValueError):
        S3Datastore("", aws_access_key_id="any", aws_secret_access_key="any")


def test_given_client_is_used_and_left_open(s3: S3Datastore, raw: Any) -> None:
    store = S3Datastore(s3.bucket, s3.prefix + "given", client=raw)
    store.put("/k", [1, 2])
    assert raw.get_object(Bucket=s3.bucket, Key=s3.prefix + "given/k.data")["Body"].read() == b"[1,2]"
    store.close()
    with pytest.raises(ClosedError):
        store.get("/k")
    assert raw.head_object(Bucket=s3.bucket, Key=s3.prefix + "given/k.data")  # still usable


def test_import_datastore_does_not_import_boto3() -> None:
    code = "import sys, datastore; sys.exit('boto3' in sys.modules or 'botocore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_missing_driver_names_the_extra() -> None:
    code = (
        "import sys\nsys.modules['boto3'] = None\n"
        "from datastore.errors import MissingDriver\n"
        "try:\n    import datastore.aws\nexcept MissingDriver as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'datastore-kit[s3]'" in done.stdout
