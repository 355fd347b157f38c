"""S3Datastore against boto3 (16 threads for bulk, like the store), on the test S3 server."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads, need, server_url

WORKERS = 16


def _target() -> tuple[str, dict[str, Any]]:
    """The bucket and client options of the test S3 server (dummy credentials if none set)."""
    url = server_url("DATASTORE_TEST_S3")
    parts = urlsplit(url)
    options: dict[str, Any] = {"region_name": "us-east-1"}
    options.update({k: v for k, v in parse_qsl(parts.query) if k == "endpoint_url"})
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(aws_access_key_id="any", aws_secret_access_key="any")
    return parts.netloc, options


def _drop_prefix(client: Any, bucket: str, prefix: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        names = [{"Key": e["Key"]} for e in page.get("Contents", ())]
        if names:
            client.delete_objects(Bucket=bucket, Delete={"Objects": names, "Quiet": True})


def s3_store(ctx: Context) -> Subject:
    bucket, options = _target()
    boto3 = need("boto3")
    try:
        from datastore.aws import S3Datastore
    except ImportError as exc:
        raise Unavailable(f"datastore.aws: {exc}") from exc
    prefix = f"bench-store-{uuid.uuid4().hex[:8]}/"
    store = S3Datastore(bucket, prefix=prefix, max_workers=WORKERS, **options)

    def cleanup() -> None:
        client = boto3.session.Session().client("s3", **options)
        _drop_prefix(client, bucket, prefix)
        client.close()

    return StoreSubject("S3Datastore", store, label=f"max_workers={WORKERS}, JSON objects",
                        cleanup=cleanup)


class RawBoto3(Subject):
    """boto3's S3 client: one request per single call, a 16-thread pool for bulk calls."""

    label = f"boto3 client; put/get_many on {WORKERS} threads, DeleteObjects for delete_many"

    def __init__(self) -> None:
        boto3 = need("boto3")
        from botocore.config import Config

        self.bucket, options = _target()
        self.prefix = f"bench-raw-{uuid.uuid4().hex[:8]}/"
        self.client = boto3.session.Session().client(
            "s3", config=Config(max_pool_connections=WORKERS), **options)
        self.pool = ThreadPoolExecutor(WORKERS)
        self._missing = self.client.exceptions.ClientError
        self.query = self._query

    def key(self, string: str) -> Any:
        return self.prefix + string[1:] + ".data"

    def put(self, name: str, value: Any) -> None:
        self.client.put_object(Bucket=self.bucket, Key=name, Body=dumps(value),
                               ContentType="application/json")

    def get(self, name: str) -> Any:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        except self.client.exceptions.NoSuchKey:
            return None
        return loads(response["Body"].read())

    def contains(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except self._missing as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=name)

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        list(self.pool.map(lambda pair: self.put(*pair), pairs))

    def get_many(self, names: list[str]) -> list[Any]:
        return list(self.pool.map(self.get, names))

    def delete_many(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            chunk = [{"Key": n} for n in names[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket,
                                       Delete={"Objects": chunk, "Quiet": True})

    def _query(self, spec: QuerySpec) -> list[Any]:
        prefix = self.key(spec.collection)[: -len(".data")] + ":"
        paginator = self.client.get_paginator("list_objects_v2")
        names = [e["Key"] for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                 for e in page.get("Contents", ())]
        return spec.apply(zip(names, self.pool.map(self.get, names), strict=True))

    def close(self) -> None:
        self.pool.shutdown()
        _drop_prefix(self.client, self.bucket, self.prefix)
        self.client.close()


def raw_boto3(ctx: Context) -> Subject:
    return RawBoto3()
