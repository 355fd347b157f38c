"""Decoding stored bytes, with an error that says where the bad bytes are.

A store that holds serialized bytes (files, LevelDB, S3, git ...) may find
bytes its serializer cannot read: a file edited by hand, written by another
program or with another serializer. Returning ``None`` would read as
"absent" and invite an overwrite, so such a value is an error that names
the file or key, for a person to inspect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .errors import BackendError

__all__ = ["CorruptValueError", "decode_value", "decode_values"]


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


def decode_values(
    serializer: Any, datas: Sequence[Any], where: Callable[[int], str]
) -> list[Any]:
    """``decode_value`` of each item of a bulk read; ``None`` (absent) stays ``None``.

    Uses the serializer's ``loads_many`` when it has one (the JSON
    serializer's checks the whole batch at once). If any item fails, the
    batch is decoded again one by one, so the error names the bad item
    (``where(i)`` says where the i-th item is stored).
    """
    many = getattr(serializer, "loads_many", None)
    try:
        if many is not None:
            return list(many(datas))
        loads = serializer.loads
        return [None if d is None else loads(d) for d in datas]
    except Exception:  # serializers raise many kinds: find and name the bad item
        return [None if d is None else decode_value(serializer, d, where(i)) for i, d in enumerate(datas)]
