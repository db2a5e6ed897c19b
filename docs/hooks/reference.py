"""MkDocs hook: generate the component reference and the CLI page from the code.

The pages are written from ``vecbench.cli.reference`` at build time, from the same parameter
declarations the constructors validate with, so the site cannot drift from the code. Pages
that quote a generated table carry a marker (``<!-- vecbench:metrics -->``) replaced here.
"""

from __future__ import annotations

import os

from mkdocs.structure.files import File

GENERATED = {
    "reference/datasets.md": ("kind", "datasets"),
    "reference/transforms.md": ("kind", "transforms"),
    "reference/indexes.md": ("kind", "indexes"),
    "reference/orderings.md": ("kind", "orderings"),
    "reference/cli.md": ("cli", None),
}
MARKERS = {"<!-- vecbench:metrics -->": "metrics"}


def _content(what: str, arg: str | None) -> str:
    from vecbench.cli import reference
    from vecbench.cli.commands import build_parser

    if what == "kind":
        return reference.kind_markdown(arg)
    os.environ.setdefault("COLUMNS", "100")  # a stable width for the generated page
    return reference.cli_markdown(build_parser())


def on_files(files, config):
    for uri, (what, arg) in GENERATED.items():
        files.append(File.generated(config, uri, content=_content(what, arg)))
    return files


def on_page_markdown(markdown, page, config, files):
    from vecbench.cli import reference

    for marker, what in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, getattr(reference, f"{what}_markdown")())
    return markdown
