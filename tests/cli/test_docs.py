"""The documentation: the MkDocs site builds with --strict (generated reference included), every
link in the README resolves, and the hand-written YAML reference covers every top-level key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from vecbench.run.experiment import INDEX_KEYS, TOP_LEVEL
from vecbench.cli.reference import kind_markdown
from vecbench.core.registry import REGISTRIES

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install "
                                         "'.[docs]' (make test installs it)")
    pytest.importorskip("material", reason="mkdocs-material is not installed (the docs extra)")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    for kind in REGISTRIES:
        page = (site / "reference" / kind / "index.html").read_text()
        for name in REGISTRIES[kind].names():
            assert f"<code>{name}</code>" in page, f"{name} missing from the {kind} page"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "vecbench describe" in cli and "examples:" in cli
    assert "recall_eps" in (site / "metrics" / "index.html").read_text()


def test_reference_pages_list_every_parameter():
    for kind, registry in REGISTRIES.items():
        page = kind_markdown(kind)
        for name in registry.names():
            component = registry.get(name)
            for param in getattr(component, "params", ()):
                assert f"| `{param.name}` |" in page, f"{kind} {name}.{param.name}"


def test_every_readme_link_resolves():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"^[a-z]+://", link) or link.startswith("#"):
            continue
        target = (ROOT / link.split("#")[0]).resolve()
        assert target.exists(), f"README links to {link}, which does not exist"


def test_experiment_reference_documents_every_key():
    page = (ROOT / "docs" / "experiment.md").read_text()
    for key in TOP_LEVEL:
        assert f"| `{key}` |" in page, f"top-level key {key!r} is not in docs/experiment.md"
    for key in INDEX_KEYS:
        assert f"| `{key}` |" in page, f"index key {key!r} is not in docs/experiment.md"
    assert "`zip:`" in page and "`cases:`" in page


def test_docs_extra_provides_mkdocs_material():
    """`make test` installs the docs extra, so the strict build above runs there."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^docs = \[.*"mkdocs>=[\d.]+".*"mkdocs-material>=[\d.]+"', pyproject, re.M)
    assert "'.[test,docs,engines]'" in (ROOT / "Makefile").read_text()
