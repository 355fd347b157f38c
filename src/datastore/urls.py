"""``datastore.open(url)``: building a store from a URL.

Each scheme maps to an *opener*, a callable ``opener(url, **options)`` that
returns a :class:`~datastore.Datastore`. Built-in schemes name the backend
module that holds the opener (its ``from_url`` function), so that nothing is
imported until a URL asks for it. Third-party packages add schemes through
the ``datastore.backends`` entry-point group::

    [project.entry-points."datastore.backends"]
    myscheme = "my_package.store:from_url"

Query-string parameters are passed to the opener as string options; keyword
options given to :func:`open` override them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .core.datastore import Datastore
from .errors import UnknownScheme

__all__ = ["BUILTIN_SCHEMES", "Opener", "open", "register", "url_options"]

Opener = Callable[..., Datastore]

#: scheme -> module whose ``from_url(url, **options)`` opens it.
BUILTIN_SCHEMES: dict[str, str] = {
    "memory": "datastore.urls",
    "file": "datastore.filesystem",
    "sqlite": "datastore.sqlite",
    "leveldb": "datastore.leveldb",
    "lru": "datastore.pylru",
    "redis": "datastore.redis",
    "rediss": "datastore.redis",
    "redis-cluster": "datastore.redis",
    "memcached": "datastore.memcached",
    "mongodb": "datastore.mongo",
    "postgresql": "datastore.sql",
    "postgres": "datastore.sql",
    "mysql": "datastore.sql",
    "mariadb": "datastore.sql",
    "s3": "datastore.aws",
    "git": "datastore.git",
}

_registered: dict[str, Opener] = {}


def register(scheme: str, opener: Opener) -> None:
    """Register ``opener`` for ``scheme`` in this process (entry points do it for packages)."""
    _registered[scheme.lower()] = opener


def url_options(url: str) -> dict[str, str]:
    """The query-string parameters of ``url`` as a dict (last value wins)."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _opener(scheme: str) -> Opener:
    if scheme in _registered:
        return _registered[scheme]
    if scheme in BUILTIN_SCHEMES:
        module = importlib.import_module(BUILTIN_SCHEMES[scheme])
        return module.from_url  # type: ignore[no-any-return]
    for entry in entry_points(group="datastore.backends"):
        if entry.name.lower() == scheme:
            opener: Opener = entry.load()
            _registered[scheme] = opener
            return opener
    known = sorted(set(BUILTIN_SCHEMES) | set(_registered))
    raise UnknownScheme(
        f"no datastore backend handles {scheme + '://'!r}; known schemes: {', '.join(known)}"
        " (third-party backends register through the 'datastore.backends' entry-point group)"
    )


def open(url: str, **options: Any) -> Datastore:
    """Open the store a URL names, e.g. ``memory://``, ``sqlite:///data.db``, ``redis://host/0``."""
    if not isinstance(url, str):
        raise TypeError(f"datastore.open takes a URL string, not {type(url).__name__}")
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"not a datastore URL (expected scheme://...): {url!r}")
    return _opener(scheme.lower())(url, **options)


def from_url(url: str, **options: Any) -> Datastore:
    """Opener for ``memory://``: a fresh :class:`~datastore.DictDatastore`."""
    from .core.memory import DictDatastore

    if options or url_options(url):
        raise ValueError(f"memory:// takes no options, got {sorted({**url_options(url), **options})}")
    return DictDatastore()
