"""Amazon S3 (and any S3-compatible server): :class:`S3Datastore`, on boto3.

Each key is one object. Object names come from :class:`~datastore.keypath.KeyPath`
(the layout the filesystem and git stores share) under an optional prefix, so
``/Comedy/MontyPython/Actor:JohnCleese`` is the object
``PREFIX/Comedy/MontyPython/Actor:JohnCleese.data``. Because namespaces are
"directories", a collection query is a prefix + delimiter listing and a
recursive query one prefix listing, both paginated.

S3 has no multi-object transactions: every single object write is atomic
(readers see the old or the new object), but a batch or a bulk call is a set
of independent writes run concurrently.

Importing this module imports boto3 (or raises :class:`~datastore.MissingDriver`
naming the ``s3`` extra); ``import datastore`` alone never does.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

try:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.utils import determine_content_length
except ImportError:  # pragma: no cover - exercised where boto3 is absent
    from .drivers import require

    require("boto3", backend="S3Datastore", extra="s3")
    raise

from . import serialize
from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .corrupt import decode_value
from .errors import BackendError, ClosedError, ConnectionFailed
from .keypath import KeyPath
from .urlparams import parse_int, parse_serializer, read_options

__all__ = ["MAX_DELETE_BATCH", "MAX_OBJECT_NAME_BYTES", "S3Datastore", "from_url"]

#: S3 refuses object names longer than this many UTF-8 bytes.
MAX_OBJECT_NAME_BYTES = 1024
#: DeleteObjects takes at most this many names per call.
MAX_DELETE_BATCH = 1000
#: Values at least this large are uploaded in parts (and parts are this large).
MULTIPART_BYTES = 8 * 1024 * 1024

_T = TypeVar("_T")
_R = TypeVar("_R")

# Error codes S3 servers use for "no such object" (HEAD answers a bare 404).
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _no_continue_for_empty_body(params: dict[str, Any], **_: Any) -> None:
    """Drop ``Expect: 100-continue`` from a PUT with an empty body.

    botocore asks for ``100 Continue`` before every PutObject body. Some
    S3-compatible servers (SeaweedFS among them) answer an empty body's
    request and then leave a stray response on the kept-alive connection,
    so the *next* request reads the wrong answer or waits out its timeout.
    With nothing to send there is nothing to wait for, so the header is
    pointless for an empty body anyway (botocore has the same fix behind an
    experimental environment variable).
    """
    body = params.get("body")
    if params.get("method") == "PUT" and body is not None and determine_content_length(body) == 0:
        params.get("headers", {}).pop("Expect", None)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3Datastore(Datastore):
    """A store whose objects live in one S3 bucket, under ``prefix``.

    ``client`` is a ready boto3 S3 client (the store then never closes it);
    otherwise one is made from ``client_options`` (``endpoint_url``,
    ``region_name``, ``aws_access_key_id``, ``config``, ...), with
    credentials found the usual boto3 way (environment, config files, IAM
    role) when none are given. ``serializer`` turns values into the object
    bytes (default JSON; ``None`` stores raw ``bytes`` only).

    Bulk calls, batches and query value fetches run on a pool of at most
    ``max_workers`` threads; values of 8 MiB or more are uploaded in parts
    (``transfer_config`` overrides the boto3 TransferConfig used).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        serializer: Any = serialize.json,
        *,
        max_workers: int = 16,
        transfer_config: TransferConfig | None = None,
        **client_options: Any,
    ) -> None:
        if not isinstance(bucket, str) or not bucket or "/" in bucket:
            raise ValueError(f"bucket must be a bucket name such as 'my-data', not {bucket!r}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str such as 'app/data', not {prefix!r}")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be an int >= 1, not {max_workers!r}")
        if client is not None and client_options:
            raise TypeError(
                "give either a ready boto3 client or options to build one, not both"
                f" (got client and {sorted(client_options)})"
            )
        self.bucket = bucket
        parts = [p for p in prefix.split("/") if p]
        #: The object-name prefix: '' or ``'some/prefix/'``.
        self.prefix = "/".join(parts) + "/" if parts else ""
        self.serializer = serialize.as_bytes_serializer(serializer)
        self.keypath = KeyPath()
        self.max_workers = max_workers
        self._content_type = (
            "application/json"
            if isinstance(self.serializer, serialize.JSONSerializer)
            else "application/octet-stream"
        )
        self._transfer = transfer_config or TransferConfig(
            multipart_threshold=MULTIPART_BYTES,
            multipart_chunksize=MULTIPART_BYTES,
            max_concurrency=min(max_workers, 10),
        )
        self._owns_client = client is None
        if client is None:
            # Enough pooled connections for the worker threads; the caller's
            # own Config settings win over this default.
            config = Config(max_pool_connections=max(10, max_workers))
            user_config = client_options.pop("config", None)
            if user_config is not None:
                config = config.merge(user_config)
            # A Session of our own: boto3's default session is not thread-safe.
            client = boto3.session.Session().client("s3", config=config, **client_options)
        self.client = client
        # On 'before-call.s3' and last: botocore adds the header there.
        client.meta.events.register_last(
            "before-call.s3",
            _no_continue_for_empty_body,
            unique_id="datastore-aws-no-continue-for-empty-body",
        )
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._bucket_seen = False
        self._closed = False

    # -- names -----------------------------------------------------------------

    def _name(self, key: Key) -> str:
        """The object name of ``key`` (ValueError when no object can hold it)."""
        name = self.prefix + self.keypath.object_path(key)
        if len(name.encode("utf-8")) > MAX_OBJECT_NAME_BYTES:
            raise ValueError(
                f"the key {str(key)[:60]!r}... makes an S3 object name longer than"
                f" {MAX_OBJECT_NAME_BYTES} bytes; use a shorter key or prefix"
            )
        return name

    def _name_or_none(self, key: KeyLike) -> str | None:
        """The object name of ``key``, or None for a key no object can hold (so it is absent)."""
        key = to_key(key)
        if key.is_root:
            return None
        try:
            return self._name(key)
        except ValueError:
            return None

    def _key_of(self, name: str) -> Key | None:
        """The key of object ``name``; None for an object this store would not have named so.

        Foreign objects under the prefix (``README``, ``a%41.data``, which
        decodes to the key of ``aA.data``) are not objects of this store, so a
        key is never listed twice.
        """
        parts = name[len(self.prefix) :].split("/")
        try:
            key = self.keypath.key_for(parts[:-1], parts[-1])
            if key is None or self.keypath.object_parts(key) != parts:
                return None
        except ValueError:  # an escape that decodes to no text, or a NUL
            return None
        return key

    # -- errors ----------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn botocore failures into DatastoreErrors, the driver's exception chained."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise BackendError(
                f"S3 {action} on bucket {self.bucket!r} failed:"
                f" {error.get('Code', '?')} {error.get('Message', '')}".rstrip()
            ) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise ConnectionFailed(f"S3 {action}: cannot reach the S3 server: {exc}") from exc
        except BotoCoreError as exc:
            raise BackendError(f"S3 {action} failed: {exc}") from exc

    def _missing(self, exc: ClientError) -> bool:
        """True when ``exc`` says the object is absent (not the bucket, not access).

        A HEAD request answers a bare 404 for a missing bucket too, so the
        first such answer is checked with HeadBucket once: a missing bucket
        must raise, never read as an absent key.
        """
        if _status(exc) != 404 or _code(exc) not in _MISSING_CODES:
            return False
        if _code(exc) == "NoSuchKey" or self._bucket_seen:
            return True
        with self._errors("HeadBucket"):
            self.client.head_bucket(Bucket=self.bucket)
        self._bucket_seen = True
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"{self!r} is closed; open a new store")

    # -- one object ------------------------------------------------------------

    def _read(self, name: str) -> bytes | None:
        """The bytes of object ``name``, or None when it does not exist."""
        with self._errors(f"GetObject {name!r}"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if self._missing(exc):
                    return None
                raise
            data: bytes = response["Body"].read()
        return data

    def _load(self, name: str) -> Any:
        data = self._read(name)
        if data is None:
            return None
        return decode_value(self.serializer, data, f"s3://{self.bucket}/{name}")

    def _write(self, name: str, data: bytes) -> None:
        """Store ``data`` as object ``name``: one PUT, or a multipart upload when large."""
        with self._errors(f"PutObject {name!r}"):
            if len(data) >= self._transfer.multipart_threshold:
                self.client.upload_fileobj(
                    io.BytesIO(data),
                    self.bucket,
                    name,
                    ExtraArgs={"ContentType": self._content_type},
                    Config=self._transfer,
                )
            else:
                self.client.put_object(
                    Bucket=self.bucket, Key=name, Body=data, ContentType=self._content_type
                )

    def _encode(self, pairs: Iterable[tuple[Key, Any]]) -> dict[str, bytes]:
        """Object name -> bytes for every pair, all encoded before anything is written."""
        return {self._name(key): data for key, data in serialize.encode_items(self.serializer, list(pairs))}

    # -- the contract ------------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        self._check_open()
        name = self._name_or_none(key)
        return None if name is None else self._load(name)

    def put(self, key: KeyLike, value: Any) -> None:
        self._check_open()
        key = write_key(key)
        check_value(value)
        name = self._name(key)
        self._write(name, self.serializer.dumps(value))

    def delete(self, key: KeyLike) -> None:
        self._check_open()
        name = self._name_or_none(key)
        if name is None:
            return
        with self._errors(f"DeleteObject {name!r}"):
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def contains(self, key: KeyLike) -> bool:
        """True when the object exists (a HEAD request: the value is not fetched)."""
        self._check_open()
        name = self._name_or_none(key)
        if name is None:
            return False
        with self._errors(f"HeadObject {name!r}"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if self._missing(exc):
                    return False
                raise
        return True

    # -- bulk --------------------------------------------------------------------

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``fn`` over ``items`` on the bounded pool (in this thread for 0 or 1 item)."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._lock:
            self._check_open()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="s3datastore")
            pool = self._pool
        return list(pool.map(fn, items))

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        self._check_open()
        names = [self._name_or_none(key) for key in keys]
        wanted = [name for name in names if name is not None]
        found = dict(zip(wanted, self._map(self._load, wanted), strict=True))
        return [None if name is None else found[name] for name in names]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self._check_open()
        encoded = self._encode(items_of(items))
        self._map(lambda item: self._write(*item), list(encoded.items()))

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        self._check_open()
        names = list(dict.fromkeys(n for n in map(self._name_or_none, keys) if n is not None))
        chunks = [names[i : i + MAX_DELETE_BATCH] for i in range(0, len(names), MAX_DELETE_BATCH)]
        self._map(self._delete_chunk, chunks)

    def _delete_chunk(self, names: list[str]) -> None:
        """One DeleteObjects call; per-object failures raise too."""
        with self._errors(f"DeleteObjects ({len(names)} objects)"):
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": name} for name in names], "Quiet": True},
            )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise BackendError(
                f"S3 DeleteObjects on bucket {self.bucket!r} failed for {len(errors)} of"
                f" {len(names)} objects, e.g. {first.get('Key')!r}: {first.get('Code')}"
                f" {first.get('Message', '')}".rstrip()
            )

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        # S3 has no multi-object atomicity: encode everything first (so a bad
        # value writes nothing), then write and delete concurrently.
        encoded = self._encode(puts)
        self._map(lambda item: self._write(*item), list(encoded.items()))
        if deletes:
            self.delete_many(deletes)

    # -- queries -----------------------------------------------------------------

    def _list(self, prefix: str, delimiter: bool) -> Iterator[str]:
        """Every object name under ``prefix`` (only one level deep with ``delimiter``)."""
        paginator = self.client.get_paginator("list_objects_v2")
        options: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            options["Delimiter"] = "/"
        with self._errors(f"ListObjectsV2 {prefix!r}"):
            for page in paginator.paginate(**options):
                for entry in page.get("Contents", ()):
                    yield entry["Key"]

    def _scope(self, query: Query) -> list[tuple[Key, str]]:
        """(key, object name) for every object in the query's scope, from listings."""
        try:
            sources = self.keypath.collection_sources(query.key)
        except ValueError:  # a namespace too long to be a name: nothing can be there
            return []
        test = engine.scope_test(query.key, query.recursive)
        found: dict[str, Key] = {}
        for dir_parts, type_prefix in sources:
            base = self.prefix + "".join(part + "/" for part in dir_parts)
            # Typed keys (/a:x) sit beside the collection's directory: one level only.
            deep = query.recursive and type_prefix is None
            for name in self._list(base + (type_prefix or ""), delimiter=not deep):
                key = self._key_of(name)
                if key is not None and test(key):
                    found[name] = key
        return [(key, name) for name, key in found.items()]

    def query(self, query: Query) -> Cursor:
        """List the scope, fetch the values concurrently, finish in the engine."""
        self._check_open()
        listed = self._scope(query)
        if not query.filters and not query.orders:
            if query.limit is not None:  # any offset+limit objects are a right answer
                listed = listed[: query.offset + query.limit]
            if query.keys_only:
                return engine.run(query, [(key, None) for key, _ in listed], scoped=True)
        values = self._map(self._load, [name for _, name in listed])
        # An object deleted between the listing and the fetch is simply gone.
        pairs = [(key, value) for (key, _), value in zip(listed, values, strict=True) if value is not None]
        return engine.run(query, pairs, scoped=True)

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker threads and, if the store made its client, close it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"<S3Datastore s3://{self.bucket}/{self.prefix}>"


# -- URLs -------------------------------------------------------------------------


def _text(text: str, name: str) -> str:
    return text


_URL_OPTIONS = {
    "endpoint_url": _text,
    "region": _text,
    "region_name": _text,
    "max_workers": parse_int,
    "serializer": parse_serializer,
}


def from_url(url: str, **options: Any) -> S3Datastore:
    """Open ``s3://bucket/prefix?endpoint_url=http://127.0.0.1:8333&region=us-east-1``.

    Query options: ``endpoint_url``, ``region`` (or ``region_name``),
    ``max_workers`` and ``serializer`` (``json``, ``prettyjson``, ``msgpack``,
    ``none``). Credentials are never read from the URL: boto3 finds them in
    the environment, its config files or an IAM role, or pass
    ``aws_access_key_id=`` / ``aws_secret_access_key=`` as keyword options.
    Keyword options override query options.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise ValueError(f"not an s3:// URL: {url!r}")
    if "@" in parts.netloc:
        raise ValueError(
            "an s3:// URL must not carry credentials; set AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY (or a boto3 profile) instead"
        )
    bucket = unquote(parts.netloc)
    if not bucket:
        raise ValueError(f"an s3:// URL names a bucket: s3://bucket/prefix, not {url!r}")
    settings = read_options(url, _URL_OPTIONS, options)
    if "region" in settings:
        settings["region_name"] = settings.pop("region")
    return S3Datastore(bucket, unquote(parts.path), **settings)
