"""Running a piece of work on several threads at once, for the concurrency cases."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["run_threads"]


def run_threads(work: Callable[[int], None], count: int = 4) -> None:
    """Call ``work(0)`` ... ``work(count - 1)`` on ``count`` threads started together.

    Waits for all of them, then fails with every exception a thread raised:
    a thread's exception would otherwise only be printed, and the test pass.
    """
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
