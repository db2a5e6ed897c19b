"""What the bad-input suites share: a tiny experiment, the one-line-error check and the
'nothing written' snapshot (tests/test_bad_input.py, test_input_integrity.py,
test_properties.py)."""

from __future__ import annotations

from pathlib import Path

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
