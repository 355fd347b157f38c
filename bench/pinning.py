"""``--pin``: the benchmark on one core, the local servers it talks to on another.

On a small host a loopback round trip has two speeds: about 25 µs when a
connection's server process runs on the client's core and about 90 µs when
it runs on another (psycopg, measured by pinning both). The scheduler
places each connection by itself, so without pinning the store's
connection and the raw driver's may sit in different regimes for a whole
round, and single-operation ratios move by 10-20 % between runs. Pinning
puts every round trip in the same regime (across cores, as between a client
and a database on different machines), which makes the ratios repeatable.

The servers are found by the loopback ports in the ``DATASTORE_TEST_*``
URLs: the processes listening on them, their child processes (PostgreSQL
forks one per connection) and all their threads. Linux only; setting
another user's affinity needs root (or CAP_SYS_NICE). The original affinity
of everything pinned is restored afterwards; a server process forked during
the run (a PostgreSQL backend) keeps the pinned core until it exits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

#: ``host:port`` of a loopback address inside a URL.
_LOOPBACK = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})")
_PROC = Path("/proc")


class PinningError(RuntimeError):
    """``--pin`` cannot be honoured here; the message says why and what to do."""


def server_ports(environ: Mapping[str, str]) -> set[int]:
    """The loopback ports named by the ``DATASTORE_TEST_*`` URLs of ``environ``."""
    ports: set[int] = set()
    for name, value in environ.items():
        if name.startswith("DATASTORE_TEST_"):
            ports.update(int(port) for port in _LOOPBACK.findall(value))
    return ports


def _listening_inodes(ports: set[int]) -> set[str]:
    """Socket inodes of the TCP sockets listening on ``ports`` (IPv4 and IPv6)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        path = _PROC / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) in ports:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def _pids() -> list[int]:
    return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit()]


def _owners(inodes: set[str]) -> set[int]:
    """The processes holding one of the sockets ``inodes``."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: set[int] = set()
    for pid in _pids():
        try:
            fds = list((_PROC / str(pid) / "fd").iterdir())
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:  # closed meanwhile (the listing's own descriptor, for one)
                continue
            if link in wanted:
                owners.add(pid)
                break
    return owners


def _with_descendants(roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _threads(pids: Iterable[int]) -> Iterator[int]:
    for pid in pids:
        try:
            yield from (int(task.name) for task in (_PROC / str(pid) / "task").iterdir())
        except OSError:
            continue


def server_threads(ports: set[int]) -> list[int]:
    """Every thread of the processes listening on ``ports`` and of their descendants."""
    return sorted(set(_threads(_with_descendants(_owners(_listening_inodes(ports))))))


@contextmanager
def pinned(environ: Mapping[str, str]) -> Iterator[str]:
    """Pin this process to one core and the local servers to another; yield a description.

    Raises :class:`PinningError` (before pinning anything) where it cannot be done.
    """
    if not hasattr(os, "sched_setaffinity") or not _PROC.joinpath("net", "tcp").exists():
        raise PinningError("--pin needs Linux (sched_setaffinity and /proc); run without it")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise PinningError("--pin needs at least two cores available; run without it")
    client_core, server_core = cores[0], cores[1]
    ports = server_ports(environ)
    threads = server_threads(ports)
    if not threads:
        raise PinningError(
            "--pin found no local server listening on the ports of the DATASTORE_TEST_* URLs"
            f" ({', '.join(map(str, sorted(ports))) or 'none'}); start them with"
            " `bash scripts/services.sh start` and source its env file, or run without --pin"
        )
    before: dict[int, set[int]] = {0: os.sched_getaffinity(0)}
    try:
        for tid in threads:
            try:
                before[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {server_core})
            except ProcessLookupError:
                continue  # a thread that ended meanwhile
            except PermissionError as exc:
                raise PinningError(
                    f"--pin may not set the CPU affinity of server thread {tid} ({exc}); run as"
                    " root or as the servers' owner, or run without --pin"
                ) from exc
        os.sched_setaffinity(0, {client_core})
        yield (f"pinned: the benchmark on core {client_core}, {len(threads)} threads of the"
               f" servers on loopback ports {', '.join(map(str, sorted(ports)))} on core"
               f" {server_core}")
    finally:
        for tid, cpus in before.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                continue
