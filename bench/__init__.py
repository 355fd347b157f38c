"""Benchmarks of every datastore against its raw driver and the peers (issue 6).

Run ``python -m bench --help``; docs/benchmarks.rst explains the method.

The benchmark measures the ``datastore`` of the checkout it lives in: its
``src`` directory goes first on ``sys.path``, whatever copy an editable
install elsewhere points to (the report records which file was measured).
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parent.parent / "src")
if sys.path[:1] != [_SRC]:
    sys.path.insert(0, _SRC)
