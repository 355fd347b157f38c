"""Sphinx configuration for the datastore documentation."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

project = "datastore"
author = "datastore developers"
copyright = "2011-2026, Juan Benet and the datastore developers"  # noqa: A001
release = "0.4.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Backend drivers may be missing where the docs are built; document the modules anyway.
autodoc_mock_imports: list[str] = []
nitpicky = False
html_theme = "alabaster"
html_static_path = ["_static"]
exclude_patterns = ["_build"]
suppress_warnings = ["autodoc.import_object"]
