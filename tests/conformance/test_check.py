"""``vecbench check``: the conformance checks of ``vecbench.conformance`` on every registered
ordering, dataset loader and metric (indexes and transforms: their own conformance test files),
and the command's lines and exit codes."""

from __future__ import annotations

import pytest

from vecbench import conformance
from vecbench.cli.commands import main
from vecbench.conformance import Skip
from vecbench.core.registry import KINDS


@pytest.mark.parametrize("kind", ["orderings", "datasets", "metrics"])
def test_every_registered_component_passes_its_checks(kind):
    module = conformance.checks_module(kind)
    for name in KINDS[kind].names():
        for label, subject in module.subjects(name):
            try:
                module.prepare(subject)
            except Skip:
                continue  # a loader that needs files: covered by its own tests
            for check, function in module.CHECKS.items():
                result = conformance.run_one(function, subject, check)
                assert result.ok is not False, f"{name}: {result.line()}"


def test_datasets_that_load_without_files_are_checked():
    results = conformance.run("synthetic")
    assert [r.line() for r in results] == ["ok   loads", "ok   shapes", "ok   metric"]
    (skipped,) = conformance.run("npy")
    assert skipped.ok is None and "needs parameters" in skipped.message


def test_a_failing_check_is_reported_not_raised():
    def broken(subject):
        assert subject == 1, "the subject is not 1"

    def crashing(subject):
        raise KeyError("x")

    assert conformance.run_one(broken, 2, "c").line() == "FAIL c: the subject is not 1"
    assert conformance.run_one(crashing, 2, "c").line() == "FAIL c: KeyError: 'x'"
    assert conformance.run_one(broken, 1, "c").line() == "ok   c"


def test_check_command_lines_and_exit_codes(capsys):
    assert main(["check", "reverse"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok   params", "ok   permutation",
                                                    "ok   seeded"]
    assert main(["check", "recall@10"]) == 2
    assert "unknown component 'recall@10' (did you mean 'recall'?)" in capsys.readouterr().err
    assert main(["check", "qps", "--kind", "metrics"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok   declaration", "ok   computes"]
