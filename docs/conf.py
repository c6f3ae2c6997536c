"""Sphinx configuration: the Markdown pages of docs/ (MyST-Parser) with the Furo theme.

Build with ``nox -s docs``: warnings are errors, the site lands in docs/_build/html.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

project = "django-asyncredis"
author = "django-asyncredis contributors"
copyright = "django-asyncredis contributors"
try:
    release = metadata.version("django-asyncredis")
except metadata.PackageNotFoundError:  # building from a checkout without installing
    release = ""
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# _generated/ holds sections other pages include (benchmarks.md), not pages of their own.
exclude_patterns = ["_build", "_generated"]

# Links such as configuration.md#ignore-exceptions need heading anchors.
myst_heading_anchors = 3
# Fences without a language (diagrams) are shown as they are.
highlight_language = "none"

html_theme = "furo"
html_title = "django-asyncredis"
html_show_sourcelink = False


# The navigation is the toctree of index.md. Pages are written alongside each other,
# so the build must not depend on which of them exist yet: an entry whose page is
# missing is dropped (instead of a warning), and a page no toctree lists is appended
# to the last one (instead of an "isn't included in any toctree" warning).

_TOCTREE = re.compile(r"^```\{toctree\}\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_ENTRY = re.compile(r"<(?P<target>[^<>]+)>\s*$")


def _entry(line: str) -> str | None:
    """The document a toctree line names, or None for an option or a blank line."""
    text = line.strip()
    if not text or text.startswith(":"):
        return None
    match = _ENTRY.search(text)
    return (match.group("target") if match else text).strip()


def _complete_toctrees(app: Any, docname: str, source: list[str]) -> None:
    if docname != app.config.root_doc:
        return
    pages = {path.stem for path in HERE.glob("*.md")} - {docname}
    trees = list(_TOCTREE.finditer(source[0]))
    if not trees:
        return
    listed = {_entry(line) for tree in trees for line in tree.group("body").splitlines()}
    unlisted = sorted(pages - listed)
    last = trees[-1]

    def rewrite(match: re.Match[str]) -> str:
        lines = [
            line
            for line in match.group("body").splitlines()
            if _entry(line) is None or _entry(line) in pages
        ]
        if match.start() == last.start():
            lines.extend(unlisted)
        body = "\n".join(lines).rstrip("\n")
        return "```{toctree}\n" + body + "\n```"

    source[0] = _TOCTREE.sub(rewrite, source[0])


def _reread_root(
    app: Any, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    # The root's toctree depends on which pages exist, which Sphinx does not track.
    return [app.config.root_doc] if added or removed else []


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _complete_toctrees)
    app.connect("env-get-outdated", _reread_root)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
