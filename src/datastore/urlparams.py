"""Reading the parts of a store URL: a local path and typed query-string options.

``datastore.open`` hands each backend's ``from_url`` the whole URL. Every
store that lives in a local file or directory (``file://``, ``leveldb://``)
reads its path the same way, and every store reads its query-string options
(always strings) into typed values the same way, so that ``?fsync=yes`` means
one thing everywhere and a misspelt option is an error, not silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from . import serialize
from .urls import url_options

__all__ = [
    "parse_bool",
    "parse_int",
    "parse_serializer",
    "read_options",
    "url_path",
]

Parser = Callable[[str, str], Any]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def url_path(url: str) -> str:
    """The local path a URL such as ``file:///var/data`` names.

    ``scheme:///abs/path`` and ``scheme://localhost/abs/path`` are absolute;
    ``scheme://./rel/path`` is relative to the working directory and
    ``scheme://~/path`` to the home directory. Percent-escapes are decoded.
    """
    parts = urlsplit(url)
    scheme = parts.scheme
    host = parts.netloc
    path = unquote(parts.path)
    if host in ("", "localhost"):
        if not path:
            raise ValueError(f"{url!r} names no path; write {scheme}:///absolute/path")
        return path
    if host == ".":
        return "." + path
    if host == "~":
        return os.path.expanduser("~" + path)
    raise ValueError(
        f"{scheme}:// URLs name a local path: {scheme}:///absolute/path,"
        f" {scheme}://./relative/path or {scheme}://~/path (got host {host!r} in {url!r})"
    )


def parse_bool(text: str, name: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case) as a bool."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"URL option {name}={text!r} is not a yes/no value; use true or false")


def parse_int(text: str, name: str) -> int:
    """A decimal integer option."""
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"URL option {name}={text!r} is not an integer") from None


def parse_serializer(text: str, name: str) -> Any:
    """A serializer by name: ``json``, ``prettyjson``, ``msgpack`` or ``none`` (raw bytes).

    ``pickle`` is refused here: a URL may come from configuration or the
    environment, and loading a pickle runs code. Pass
    ``serializer=datastore.serialize.pickle`` in code to choose it knowingly.
    """
    lowered = text.strip().lower()
    if lowered == "json":
        return serialize.json
    if lowered == "prettyjson":
        return serialize.prettyjson
    if lowered in ("none", "raw", "bytes"):
        return None
    if lowered == "msgpack":
        return serialize.msgpack()
    if lowered == "pickle":
        raise ValueError(
            "a URL cannot choose the pickle serializer (loading a pickle runs code);"
            " pass serializer=datastore.serialize.pickle in code if you trust the data"
        )
    raise ValueError(
        f"URL option {name}={text!r} names no serializer; use json, prettyjson, msgpack or none"
    )


def read_options(
    url: str, parsers: Mapping[str, Parser], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The URL's query-string options parsed by ``parsers``, then ``overrides`` on top.

    An option the store does not know is a ValueError naming the ones it does.
    Keyword ``overrides`` (from ``datastore.open(url, **options)``) are
    passed through as they are; the store's constructor checks them.
    """
    options: dict[str, Any] = {}
    for name, text in url_options(url).items():
        parser = parsers.get(name)
        if parser is None:
            known = ", ".join(sorted(parsers)) or "none"
            scheme = url.partition("://")[0]
            raise ValueError(f"unknown option {name!r} in a {scheme}:// URL; known options: {known}")
        options[name] = parser(text, name)
    options.update(overrides)
    return options
