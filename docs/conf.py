"""Sphinx configuration for the StemBot docs: Markdown pages (MyST) with the Furo theme."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS / "_ext"), str(DOCS.parent)]  # the reference extension, and the bot it reads

project = "StemBot"
author = "The StemBot authors"
copyright = "2026, the StemBot authors"

extensions = ["myst_parser", "stembot_reference"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", ".venv"]
root_doc = "index"

# Headings up to ### get anchors, so pages link to each other's sections as `page.md#heading`.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = "StemBot"
html_static_path: list[str] = []

# Words taken from the code (command descriptions, setting texts) are shown exactly as written.
smartquotes = False
