"""Decoding stored bytes, with an error that says where the bad bytes are.

A store that holds serialized bytes (files, LevelDB, S3, git ...) may find
bytes its serializer cannot read: a file edited by hand, written by another
program or with another serializer. Returning ``None`` would read as
"absent" and invite an overwrite, so such a value is an error that names
the file or key, for a person to inspect.
"""

from __future__ import annotations

from typing import Any

from .errors import BackendError

__all__ = ["CorruptValueError", "decode_value"]


class CorruptValueError(BackendError):
    """A stored value that the store's serializer cannot decode.

    ``where`` names the file or engine key; the serializer's exception is
    the ``__cause__``.
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"the value stored at {where} cannot be decoded ({reason}); it was not written"
            " by this store with this serializer: inspect it, or delete it to reclaim the key"
        )
        self.where = where


def decode_value(serializer: Any, data: bytes, where: str) -> Any:
    """``serializer.loads(data)``, or :class:`CorruptValueError` naming ``where``."""
    try:
        return serializer.loads(data)
    except Exception as exc:  # serializers raise many kinds (ValueError, msgpack's, ...)
        raise CorruptValueError(where, f"{type(exc).__name__}: {exc}") from exc
