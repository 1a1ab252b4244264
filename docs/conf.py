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
# No default options: a non-string default (such as "members": False) would override every
# directive's own :members: option.
autodoc_default_options = {}
# Type lists only for parameters a docstring describes (not every field of a config dataclass).
autodoc_typehints_description_target = "documented"
napoleon_google_docstring = True
nitpicky = False
suppress_warnings = ["myst.header"]


# Field and property docstrings here are plain reST sentences. Napoleon reads the first line of
# an attribute docstring as "type: description" and would cut a sentence at its first colon,
# so those docstrings are kept as written.
_FIELD_KINDS = ("attribute", "property", "data")
_field_docstrings: dict[str, list[str]] = {}


def _remember_field_docstring(app, what, name, obj, options, lines):
    if what in _FIELD_KINDS:
        _field_docstrings[name] = list(lines)


def _restore_field_docstring(app, what, name, obj, options, lines):
    if what in _FIELD_KINDS and name in _field_docstrings:
        lines[:] = _field_docstrings.pop(name)


def setup(app):
    app.connect("autodoc-process-docstring", _remember_field_docstring, priority=100)
    app.connect("autodoc-process-docstring", _restore_field_docstring, priority=900)
