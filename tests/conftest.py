"""Shared pytest set-up: make ``tests/`` importable for the server helpers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
