"""What the bad-input suites share: a tiny experiment, the one-line-error check and the
'nothing written' snapshot (tests/cli/test_bad_input.py, test_input_integrity.py,
test_properties.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vecbench.cli import commands as cli

TINY = """
name: tiny
k: 5
datasets:
  - synthetic: {n_base: 300, n_queries: 10, dim: 8}
indexes:
  - flat: {}
  - hnswlib: {build: {M: 8}, search: {ef: [10]}}
"""

#: Good vectors (30 x 4 float32) for the small files the bad-input tests write.
GOOD = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)


def one_line(capsys, argv, *named, rc=2):
    """Run the CLI; assert exit ``rc``, exactly one stderr line naming each of ``named``."""
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == rc, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    for name in named:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def snapshot(folder: Path, folders: bool = False) -> dict:
    """Every file (and with ``folders``, every folder) under ``folder`` with its size and
    mtime: what 'nothing lost / nothing written' is checked against."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if folders or p.is_file()}


def beir_folder(tmp_path):
    """A small valid BEIR folder (5 documents, 3 queries, model ``m``) under ``tmp_path``."""
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    (root / "embeddings" / "m").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n" for i in range(5)))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(3)))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td1\t1\n")
    np.save(root / "embeddings" / "m" / "corpus.npy", GOOD[:5])
    np.save(root / "embeddings" / "m" / "queries.npy", GOOD[:3])
    return root
