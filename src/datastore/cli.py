"""The ``datastore`` command: the library's API from a shell.

``datastore put /hello '"world"'`` then ``datastore get /hello`` works right
after ``pip install``, because with no ``--store`` and no ``DATASTORE_URL``
the command uses an embedded SQLite file in the per-user data directory.
Every command prints JSON (or plain keys) on stdout and one human-readable
line on stderr when something goes wrong, with an exit code a script can
test:

* ``0`` success
* ``1`` not found (``get`` of an absent key), or an unexpected failure
* ``2`` usage: bad arguments, key, JSON value or filter, unknown URL scheme,
  or a value the store refuses
* ``3`` the store failed: unreachable server, missing driver, I/O error
* ``130`` interrupted; ``141`` stdout closed early (as after ``| head``)

A traceback is printed only with ``--debug``. The full reference is
``docs/cli.rst``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import __version__
from .core.datastore import Datastore
from .core.key import Key
from .core.query import Filter, Order, Query
from .errors import DatastoreError

__all__ = [
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "Failure",
    "build_parser",
    "default_store_path",
    "main",
    "parse_filter",
    "parse_json_value",
]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Objects written per ``put_many`` call by ``copy``.
COPY_CHUNK = 500

#: Filter operators, longest first so that ``<=`` is not read as ``<``.
_FILTER_OPS = ("<=", ">=", "!=", "==", "<", ">", "=")


class Failure(Exception):
    """An error the command reports as one line on stderr, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- parsing values, keys, filters ------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_value(text: str, source: str = "VALUE") -> Any:
    """Strict JSON (no NaN/Infinity, which JSON stores could not hold exactly)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise Failure(
            f"{source} is not valid JSON ({exc}); quote strings as JSON,"
            " e.g. '\"world\"', or read a file with @FILE",
            EXIT_USAGE,
        ) from None


def _filter_value(text: str) -> Any:
    """A filter's VALUE: JSON when it parses (``30``, ``true``, ``"30"``), else the text."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def parse_filter(text: str) -> Filter:
    """``'age>30'`` -> ``Filter('age', '>', 30)``; the first operator in the text splits it."""
    for i in range(len(text)):
        for op in _FILTER_OPS:
            if text.startswith(op, i):
                field = text[:i].strip()
                if not field:
                    raise ValueError(f"filter {text!r} has no field before {op!r}")
                value = _filter_value(text[i + len(op) :].strip())
                return Filter(field, "=" if op == "==" else op, value)
    raise ValueError(
        f"filter {text!r} has no operator; write FIELD OP VALUE with OP one of"
        " <= >= != < > =, e.g. 'age>30' or 'name!=Eric'"
    )


def _key_arg(text: str) -> Key:
    try:
        return Key(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"bad key: {exc}") from None


def _filter_arg(text: str) -> Filter:
    try:
        return parse_filter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _order_arg(text: str) -> Order:
    try:
        return Order(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count_arg(text: str, least: int = 0) -> int:
    try:
        number = int(text)
    except ValueError:
        number = least - 1
    if number < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, not {text!r}")
    return number


def _chunk_arg(text: str) -> int:
    return _count_arg(text, least=1)


# -- choosing and opening the store ------------------------------------------------


def default_store_path() -> Path:
    """``$DATASTORE_HOME/datastore.db``, else the per-user data directory's ``datastore.db``."""
    home = os.environ.get("DATASTORE_HOME")
    if home:
        return Path(home).expanduser().absolute() / "datastore.db"
    from platformdirs import user_data_dir

    return Path(user_data_dir("datastore")) / "datastore.db"


@dataclass(frozen=True)
class StoreChoice:
    """Which store a command uses, and what chose it (for ``info`` and messages)."""

    url: str
    source: str  # "--store", "DATASTORE_URL" or "default"
    path: Path | None = None  # the SQLite file of the default store


def _choose_store(args: argparse.Namespace) -> StoreChoice:
    url = getattr(args, "store", None)
    if url:
        return StoreChoice(url, "--store")
    url = os.environ.get("DATASTORE_URL")
    if url:
        return StoreChoice(url, "DATASTORE_URL")
    path = default_store_path()
    return StoreChoice("sqlite:///" + path.as_posix(), "default", path)


def redact(url: str) -> str:
    """``url`` with its password and secret-looking query parameters masked as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is not None:
        netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
        url = url.replace(parts.netloc, netloc, 1)
    if parts.query:
        secret = ("pass", "secret", "token")
        pairs = [
            (k, "***" if any(s in k.lower() for s in secret) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        url = url.replace("?" + parts.query, "?" + urlencode(pairs, safe="*/:"), 1)
    return url


def _open(choice: StoreChoice) -> Datastore:
    """Open the chosen store. The default store is built from its path, never a URL,
    so any directory name (spaces, ``?``, ``#``) works."""
    if choice.path is not None:
        from .sqlite import SQLiteDatastore

        choice.path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteDatastore(str(choice.path))
    from .urls import open as open_url

    return open_url(choice.url)


def _describe(exc: BaseException) -> str:
    """One line for an error, with its chained driver error when that adds something."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({type(cause).__name__}: {cause})"
    return text


@contextmanager
def _store_errors(label: str) -> Iterator[None]:
    """Turn a store's failures (not bad input) into a :class:`Failure` naming the store."""
    try:
        yield
    except BrokenPipeError:
        raise
    except (DatastoreError, OSError, ImportError) as exc:
        if isinstance(exc, ValueError):  # UnknownScheme: a usage error
            raise
        raise Failure(f"store {label}: {_describe(exc)}", EXIT_STORE) from exc


@contextmanager
def _session(choice: StoreChoice) -> Iterator[Datastore]:
    """The opened store, closed afterwards; its failures name it."""
    with _store_errors(redact(choice.url)):
        store = _open(choice)
        try:
            yield store
        finally:
            store.close()


# -- output -----------------------------------------------------------------------


def _json(value: Any, key: Key) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Failure(
            f"the value at {key} cannot be printed as JSON ({exc}); it is a {type(value).__name__}",
            EXIT_NOT_FOUND,
        ) from exc


def _print_lines(lines: Iterable[str]) -> None:
    """Write each line to stdout as it comes (queries stream), then flush."""
    out = sys.stdout
    for line in lines:
        out.write(line)
        out.write("\n")
    out.flush()


class Progress:
    """A one-line progress display on stderr: objects done and rate, redrawn ~10x/s."""

    def __init__(self, label: str, stream: TextIO, enabled: bool) -> None:
        self.label = label
        self.stream = stream
        self.enabled = enabled
        self.count = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, done: int) -> None:
        self.count += done
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.count / elapsed
        self.stream.write(f"\r{self.label}: {self.count:,} objects  {rate:,.0f}/s  {elapsed:.1f}s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


# -- commands ----------------------------------------------------------------------


def _read_value(source: str | None) -> Any:
    """VALUE as given: JSON text, ``@FILE``, or ``-``/nothing for stdin."""
    if source is None or source == "-":
        return parse_json_value(sys.stdin.read(), "the JSON read from stdin")
    if source.startswith("@"):
        path = source[1:]
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Failure(f"cannot read value file {path!r}: {exc}", EXIT_USAGE) from None
        return parse_json_value(text, f"the file {path!r}")
    return parse_json_value(source)


def cmd_put(args: argparse.Namespace) -> int:
    """Store a JSON value under KEY (overwriting)."""
    value = _read_value(args.value)  # before opening: bad input touches no store
    with _session(_choose_store(args)) as store:
        store.put(args.key, value)
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    """Print KEY's value as JSON; exit 1 when absent."""
    with _session(_choose_store(args)) as store:
        value = store.get(args.key)
    if value is None:
        raise Failure(f"not found: {args.key}", EXIT_NOT_FOUND)
    _print_lines([_json(value, args.key)])
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    """Remove KEY; an absent key is not an error (as in the library)."""
    with _session(_choose_store(args)) as store:
        store.delete(args.key)
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    """Print the keys of a collection, one per line, in tree order."""
    query = Query(args.key, recursive=args.recursive, keys_only=True)
    with _session(_choose_store(args)) as store:
        keys = sorted(store.query(query))
        _print_lines(str(key) for key in keys)
    return EXIT_OK


def _query_lines(query: Query, store: Datastore) -> Iterator[str]:
    cursor = store.query(query)
    if query.keys_only:
        for key in cursor:
            yield str(key)
    else:
        for key, value in cursor.items():
            yield _json({"key": str(key), "value": value}, key)


def cmd_query(args: argparse.Namespace) -> int:
    """Print the objects a query matches, one JSON object per line, as they stream."""
    query = Query(
        args.key,
        limit=args.limit,
        offset=args.offset,
        recursive=args.recursive,
        keys_only=args.keys_only,
    )
    for filter_ in args.filters:
        query.filter(filter_)
    for order in args.orders:
        query.order(order)
    with _session(_choose_store(args)) as store:
        _print_lines(_query_lines(query, store))
    return EXIT_OK


def _chunks(pairs: Iterable[tuple[Key, Any]], size: int) -> Iterator[list[tuple[Key, Any]]]:
    iterator = iter(pairs)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _labelled(pairs: Iterable[tuple[Key, Any]], label: str) -> Iterator[tuple[Key, Any]]:
    """Iterate ``pairs`` with its failures reported as failures of the store ``label``."""
    with _store_errors(label):
        yield from pairs


def cmd_copy(args: argparse.Namespace) -> int:
    """Stream every object of SRC_URL into DST_URL with batched writes (idempotent)."""
    if args.src == args.dst:
        raise Failure("source and destination are the same store; nothing to copy", EXIT_USAGE)
    src_label, dst_label = redact(args.src), redact(args.dst)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = Progress("copy", sys.stderr, show)
    with (
        _session(StoreChoice(args.src, "argument")) as src,
        _session(StoreChoice(args.dst, "argument")) as dst,
    ):
        everything = src.query(Query("/", recursive=True))
        try:
            for chunk in _chunks(_labelled(everything.items(), src_label), args.chunk):
                with _store_errors(dst_label):
                    dst.put_many(chunk)
                progress.update(len(chunk))
        except BaseException:
            progress.close()
            print(
                f"datastore: {progress.count:,} objects were copied before stopping",
                file=sys.stderr,
            )
            raise
    progress.close()
    summary = {
        "copied": progress.count,
        "source": src_label,
        "destination": dst_label,
        "seconds": round(progress.seconds, 3),
    }
    _print_lines([json.dumps(summary, ensure_ascii=False)])
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    """Print the store's type, URL, what chose it, and its object count."""
    choice = _choose_store(args)
    with _session(choice) as store:
        count = sum(1 for _ in store.query(Query("/", recursive=True, keys_only=True)))
        info = {
            "type": type(store).__name__,
            "module": type(store).__module__,
            "url": redact(choice.url),
            "chosen_by": choice.source,
            "objects": count,
        }
    _print_lines([json.dumps(info, ensure_ascii=False)])
    return EXIT_OK


# -- the parser --------------------------------------------------------------------

_DESCRIPTION = """\
Read and write a datastore from the shell: get, put, delete, list and query
objects under hierarchical keys, and copy whole stores.

The store is --store URL, else $DATASTORE_URL, else an embedded SQLite file
datastore.db in $DATASTORE_HOME or the per-user data directory.
"""

_EPILOG = """\
examples:
  datastore put /hello '"world"'
  datastore get /hello
  datastore put /people/Person:eric '{"name": "Eric", "age": 41}'
  datastore query /people/Person --filter 'age>30' --order -age --limit 10
  datastore --store redis://127.0.0.1:6379/0 ls / -r
  datastore copy sqlite:////tmp/a.db file:///tmp/export

exit codes: 0 ok, 1 not found, 2 usage or bad input, 3 store failure
"""


def _common_options() -> argparse.ArgumentParser:
    """``--store`` and ``--debug``, accepted before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="store URL, e.g. sqlite:////abs/file.db or redis://host:6379/0"
        " (default: $DATASTORE_URL, else the embedded SQLite store)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the traceback of an error",
    )
    return common


def _add(
    commands: Any,
    name: str,
    run: Callable[[argparse.Namespace], int],
    common: argparse.ArgumentParser,
    summary: str,
    epilog: str = "",
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        parents=[common],
        help=summary,
        description=summary,
        epilog=epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run, command=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``datastore`` command."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="datastore",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"datastore {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.required = True

    put = _add(
        commands,
        "put",
        cmd_put,
        common,
        "store a JSON value under KEY (overwrites)",
        "VALUE is JSON: '\"text\"', 42, true, '[1, 2]', '{\"a\": 1}'.\n"
        "@FILE reads the JSON from FILE; '-' or no VALUE reads it from stdin.\n"
        "A negative number that argparse mistakes for an option goes after '--'.",
    )
    put.add_argument("key", metavar="KEY", type=_key_arg, help="key, e.g. /people/Person:eric")
    put.add_argument("value", metavar="VALUE", nargs="?", help="JSON, @FILE, or - for stdin")

    get = _add(commands, "get", cmd_get, common, "print KEY's value as JSON (exit 1 if absent)")
    get.add_argument("key", metavar="KEY", type=_key_arg)

    delete = _add(commands, "delete", cmd_delete, common, "remove KEY (absent: no error)")
    delete.add_argument("key", metavar="KEY", type=_key_arg)

    ls = _add(
        commands,
        "ls",
        cmd_ls,
        common,
        "list the keys of collection KEY, one per line",
        "The collection /a holds /a/1 and /a:x; -r adds /a/b/c and deeper.",
    )
    ls.add_argument("key", metavar="KEY", type=_key_arg, nargs="?", default=Key("/"))
    ls.add_argument("-r", "--recursive", action="store_true", help="include sub-collections")

    query = _add(
        commands,
        "query",
        cmd_query,
        common,
        "print the objects of collection KEY that match, one JSON object per line",
        "filters: FIELD OP VALUE, OP one of <= >= != < > =; VALUE is JSON when it\n"
        "parses (30, true, null, '\"30\"') and a string otherwise (Eric).\n"
        "orders: +FIELD or FIELD ascending, -FIELD descending; later orders break ties.\n"
        'Output lines are {"key": ..., "value": ...}, or bare keys with --keys-only.\n\n'
        "example:\n"
        "  datastore query /people/Person --filter 'age>30' --filter 'name!=Eric' \\\n"
        "      --order -age --order +name --limit 10 --offset 5",
    )
    query.add_argument("key", metavar="KEY", type=_key_arg, nargs="?", default=Key("/"))
    query.add_argument(
        "-f",
        "--filter",
        dest="filters",
        metavar="EXPR",
        type=_filter_arg,
        action="append",
        default=[],
        help="keep objects where FIELD OP VALUE holds, e.g. 'age>30' (repeatable)",
    )
    query.add_argument(
        "-o",
        "--order",
        dest="orders",
        metavar="ORDER",
        type=_order_arg,
        action="append",
        default=[],
        help="sort by +FIELD or -FIELD (repeatable)",
    )
    query.add_argument("--limit", type=_count_arg, default=None, help="at most N objects")
    query.add_argument("--offset", type=_count_arg, default=0, help="skip the first N objects")
    query.add_argument("--keys-only", action="store_true", help="print keys, not objects")
    query.add_argument("-r", "--recursive", action="store_true", help="include sub-collections")

    copy = _add(
        commands,
        "copy",
        cmd_copy,
        common,
        "copy every object from SRC_URL into DST_URL",
        "Streams the source and writes in batches; running it again gives the same\n"
        "result (keys are overwritten; keys only in DST_URL are kept). A summary\n"
        '{"copied": N, ...} is printed on stdout.',
    )
    copy.add_argument("src", metavar="SRC_URL")
    copy.add_argument("dst", metavar="DST_URL")
    copy.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress line on stderr (default: when stderr is a terminal)",
    )
    copy.add_argument(
        "--chunk",
        type=_chunk_arg,
        default=COPY_CHUNK,
        help=f"objects per batched write (default {COPY_CHUNK})",
    )

    _add(commands, "info", cmd_info, common, "print the store's type, URL and object count")
    return parser


def _join_order_values(argv: Sequence[str]) -> list[str]:
    """Let ``--order -age`` mean ``--order=-age`` (argparse would take ``-age`` for an option)."""
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if arg in ("--order", "-o") and len(nxt) > 1 and nxt[0] == "-" and nxt[1] != "-":
            out.append(f"{arg}={nxt}" if arg == "--order" else f"-o{nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


# -- running -----------------------------------------------------------------------


def _error_code(exc: BaseException) -> tuple[int, str]:
    """The exit code and message for an error that escaped a command."""
    if isinstance(exc, Failure):
        return exc.code, str(exc)
    if isinstance(exc, (TypeError, ValueError)):  # bad input, as the library reports it
        return EXIT_USAGE, _describe(exc)
    if isinstance(exc, (DatastoreError, OSError, ImportError)):
        return EXIT_STORE, _describe(exc)
    return EXIT_NOT_FOUND, f"unexpected error: {type(exc).__name__}: {exc}"


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command on ``argv`` (default ``sys.argv[1:]``) and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(_join_order_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("datastore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        code, message = _error_code(exc)
        if debug:
            traceback.print_exc()
        elif code == EXIT_STORE or not isinstance(exc, (Failure, TypeError, ValueError)):
            message += " (run with --debug for the traceback)"
        message = re.sub(r"\s*\n\s*", " ", message)  # driver messages may span lines
        print(f"datastore {args.command}: error: {message}", file=sys.stderr)
        return code
