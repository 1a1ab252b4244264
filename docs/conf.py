"""Sphinx configuration of the Penguin documentation (MyST Markdown pages, the furo theme).

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (the tests build it with warnings
as errors). Pages generated from the code (the command line's help) are written by
``docs/generate.py`` before the build.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate  # noqa: E402  (docs/generate.py: pages written from the code)

generate.main()

project = "Penguin"
author = "the Penguin authors"
copyright = "the Penguin authors, MIT license"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
html_theme = "furo"
html_title = "Penguin"
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": False}
napoleon_google_docstring = True
nitpicky = False
suppress_warnings = ["myst.header"]
