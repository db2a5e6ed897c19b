"""compare (rules with metric directions, row matching) and best-under-budget."""

import shutil
import textwrap

import pandas as pd
import pytest
import yaml

from vecbench.evaluate import compare
from vecbench.core.errors import ConfigError, DataError
from helpers import vecbench


def table(**metrics):
    rows = {"dataset": ["d", "d"], "pipeline": ["float32", "float32"],
            "index": ["hnswlib", "hnswlib"], "build.M": [16, 16], "search.ef": [10, 40],
            "ordering": ["original"] * 2, "repeat": [0, 0], "k": [10, 10]}
    rows.update({name: list(values) for name, values in metrics.items()})
    return pd.DataFrame(rows)


def test_rules_take_direction_from_metrics():
    recall, qps, p99 = compare.parse_rules("recall@10:-0.005,qps:-10%,p99_ms:+5%")
    assert recall.higher_is_better and not recall.relative and recall.tolerance == 0.005
    assert qps.relative and qps.tolerance == 10
    assert not p99.higher_is_better
    assert recall.fails(0.95, 0.94) and not recall.fails(0.95, 0.946)
    assert not recall.fails(0.95, 0.99)            # an improvement never fails
    assert qps.fails(1000, 850) and not qps.fails(1000, 950) and not qps.fails(1000, 5000)
    assert p99.fails(1.0, 1.2) and not p99.fails(1.0, 0.1)  # lower is better: a rise fails


@pytest.mark.parametrize("text, expected", [
    ("recall@10", "--fail: expected METRIC:THRESHOLD"),
    ("recall@10:abc", "got 'recall@10:abc'"),
    ("color:-1", "'color' is not a metric"),
    ("", "at least one"),
])
def test_bad_rules_are_one_line_config_errors(text, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        compare.parse_rules(text)
    assert "\n" not in str(info.value)


def test_compare_matches_rows_and_flags_regressions():
    base = table(**{"recall@10": [0.90, 0.99], "qps": [2000.0, 800.0]})
    new = table(**{"recall@10": [0.90, 0.97], "qps": [2100.0, 500.0]})
    new["build.M"] = [16.0, 16.0]                  # a float column (read from CSV) still matches
    result = compare.compare(base, new, compare.parse_rules("recall@10:-0.005,qps:-10%"))
    assert len(result.table) == 2 and not result.ok
    assert len(result.failures) == 2               # ef=40: recall -0.02 and qps -37.5%
    assert all("search.ef=40" in line for line in result.failures)
    assert list(result.table["failed"]) == ["", "recall@10,qps"]
    assert result.table["recall@10 change"].round(6).tolist() == [0.0, -0.02]
    loose = compare.compare(base, new, compare.parse_rules("recall@10:-0.05,qps:-50%"))
    assert loose.ok


def test_unmatched_and_disjoint_tables():
    base = table(**{"recall@10": [0.9, 0.9]})
    new = base.copy()
    new.loc[1, "search.ef"] = 80
    result = compare.compare(base, new, compare.parse_rules("recall@10:-0.01"))
    assert (result.only_base, result.only_new, len(result.table)) == (1, 1, 1)
    assert result.lost == [f"MISSING in NEW: dataset=d pipeline=float32 index=hnswlib "
                           f"build.M=16 search.ef=40 ordering=original repeat=0 k=10"]
    assert not result.ok and result.gate_failures == result.lost
    assert compare.compare(base, new, compare.parse_rules("recall@10:-0.01"),
                           allow_missing=True).ok
    new["dataset"] = "other"
    disjoint = compare.compare(base, new, compare.parse_rules("recall@10:-0.01"),
                               allow_missing=True)
    # nothing was compared: that fails even when missing configurations are allowed
    assert not disjoint.ok and "share no configuration" in disjoint.failures[0]
    with pytest.raises(ConfigError, match="no column 'ndcg@10'"):
        compare.compare(base, base, compare.parse_rules("ndcg@10:-0.01"))


def test_best_under_budget_respects_every_budget():
    frame = pd.DataFrame({"dataset": "d", "pipeline": ["a", "b", "c", "d"], "index": "flat",
                          "k": 10, "ndcg@10": [0.70, 0.65, 0.60, 0.80],
                          "bytes_per_vector": [512, 256, 128, 256],
                          "p99_ms": [1.0, 1.0, 1.0, 9.0], "qps": [1.0, 2.0, 3.0, 4.0]})
    budgets = [compare.parse_budget("bytes_per_vector<=256"), compare.parse_budget("p99_ms<5")]
    row, n_ok = compare.best_under_budget(frame, budgets, "ndcg@10")
    assert row["pipeline"] == "b" and n_ok == 2
    row, _ = compare.best_under_budget(frame, budgets[:1], "p99_ms", maximize=False)
    assert row["pipeline"] == "c"                  # tie on p99 -> the faster one
    assert compare.best_under_budget(frame, [compare.parse_budget("bytes_per_vector<8")],
                                     "ndcg@10") == (None, 0)
    with pytest.raises(ConfigError, match="--budget: no column 'size'.*bytes_per_vector"):
        compare.best_under_budget(frame, [compare.parse_budget("size<=3")], "ndcg@10")
    with pytest.raises(ConfigError, match="--budget: expected COLUMN<=NUMBER"):
        compare.parse_budget("bytes_per_vector<=lots")


def test_configuration_from_labels_parses_pipeline_params():
    row = pd.Series({"dataset": "d", "pipeline": "pca(n_components=64)|float8(format=e4m3)",
                     "index": "hnswlib", "build.M": 16.0, "build.nlist": float("nan"),
                     "search.ef": 40.0, "ordering": "original", "k": 10})
    config = compare.configuration(row)
    assert config["pipeline"] == [{"pca": {"n_components": 64}}, {"float8": {"format": "e4m3"}}]
    assert config["index"] == {"hnswlib": {"build": {"M": 16}, "search": {"ef": 40}}}


# ---------------------------------------------------------------------------------------------
# On real (tiny) results, through the command line

@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from vecbench.run.experiment import build_experiment
    from vecbench.run.runner import run_experiment

    folder = tmp_path_factory.mktemp("results")
    experiment = build_experiment({
        "name": "tiny", "k": 10, "datasets": [{"digits": {"n_queries": 60}}],
        "indexes": [{"flat": {}},
                    {"hnswlib": {"build": {"M": 8, "ef_construction": 40},
                                 "search": {"ef": [10, 40]}}}]})
    run_experiment(experiment, folder, threads=1, log=lambda line: None)
    return folder


def test_cli_compare_exit_codes(results, tmp_path):
    same = vecbench("compare", results, results, "--fail", "recall@10:-0.005")
    assert same.returncode == 0, same.stderr
    assert "0 rule failures over 3 matched" in same.stdout
    worse = tmp_path / "worse"
    shutil.copytree(results, worse)
    # a worse run: rewrite the stored ids so that every query loses its nearest neighbour
    from vecbench.run import records
    for path in (worse / "runs").glob("*.json"):
        record = records.read_record(path)
        raw = records.load_raw(worse, record)
        for search in raw.searches:
            search.ids[10][:, 0] = -1
        record.raw = records.write_arrays(worse / "runs" / record.raw.file, raw)
        records.write_record(worse, record)   # re-signed: a hand edit alone is refused
    done = vecbench("compare", results, worse, "--fail", "recall@10:-0.005")
    assert done.returncode == 1
    assert done.stdout.count("REGRESSION recall@10") == 3
    bad = vecbench("compare", results, worse, "--fail", "recall@10=-1")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--fail" in bad.stderr


def test_cli_best_prints_a_spec_the_plugin_accepts(results):
    from vecbench.cli.pytest_plugin import build_spec

    done = vecbench("best", results, "--budget", "bytes_per_vector<=256", "--budget",
                    "recall@10>=0.5", "--maximize", "qps")
    assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(done.stdout)
    assert spec["dataset"] == {"digits": {"n_queries": 60}} and spec["k"] == 10
    assert "recall@10:" in done.stdout and "# measured:" in done.stdout
    frame = compare.load_table(results)
    ok = frame[frame["recall@10"] >= 0.5]
    winner = ok.loc[ok["qps"].idxmax()]
    assert list(spec["index"]) == [winner["index"]]
    assert build_spec(spec).experiment.n_rows == 1   # pastes straight into a .vecbench.yaml
    none = vecbench("best", results, "--budget", "bytes_per_vector<=1", "--maximize", "qps")
    assert none.returncode == 1 and "no configuration meets" in none.stderr
    bad = vecbench("best", results, "--budget", "bytes<=1", "--maximize", "qps")
    assert bad.returncode == 2 and "no column 'bytes'" in bad.stderr


def test_a_rows_configuration_keeps_its_own_search_and_rescoring(tmp_path):
    from vecbench.run import runner
    from vecbench.run.experiment import load_experiment
    from vecbench.cli.pytest_plugin import build_spec, run_spec

    path = tmp_path / "exp.yaml"
    path.write_text("datasets: [{synthetic: {n_base: 1500, n_queries: 40, dim: 64, "
                    "intrinsic_dim: 32, metric: cos}}]\npipelines: [[binary: {}]]\n"
                    "indexes: [{hnswlib: {build: {M: 8}, search: {ef: [10, 64]}, "
                    "rescore: {oversample: [1, 10], with: float32}}}]\n")
    runner.run_experiment(load_experiment(path), tmp_path / "r", threads=1,
                          log=lambda line: None)
    frame = compare.load_table(tmp_path / "r", with_specs=True)
    assert len(frame) == 4
    row = frame[(frame["search.ef"] == 64) & (frame["rescore.oversample"] == 10)].iloc[0]
    spec = compare.configuration(row)
    assert spec["index"]["hnswlib"]["search"] == {"ef": 64}
    assert spec["index"]["hnswlib"]["rescore"] == {"oversample": 10, "with": "float32"}
    # pasted into a spec, it measures what the row measured (same threads: a multi-threaded
    # hnswlib build is not deterministic)
    rerun = run_spec(build_spec(spec), threads=1)
    assert rerun[0]["recall@10"] == pytest.approx(row["recall@10"])


def test_a_qps_drop_within_the_measured_spread_does_not_fail():
    base = table(**{"recall@10": [0.9, 0.9], "qps": [1000.0, 1000.0],
                    "qps_spread": [0.30, 0.02]})
    new = table(**{"recall@10": [0.9, 0.9], "qps": [850.0, 850.0],
                   "qps_spread": [0.30, 0.02]})
    result = compare.compare(base, new, compare.parse_rules("qps:-10%"))
    # -15%: inside a 30% spread (the pass ranges overlap), outside a 2% one
    assert list(result.table["failed"]) == ["", "qps"] and len(result.failures) == 1


def test_two_identical_runs_pass_a_qps_gate(tmp_path):
    """The same experiment run twice: its timings differ by noise, which the spread covers."""
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent("""
        name: twice
        timing: {min_seconds: 0.3, latency_queries: 20}
        datasets: [{synthetic: {n_base: 2000, n_queries: 100, dim: 16}}]
        indexes:
          - flat: {}
          - hnswlib: {build: {M: 8, ef_construction: 40}, search: {ef: [10, 40]}}
        """))
    for name in ("a", "b"):
        done = vecbench("run", path, "--results", tmp_path / name, "--threads", "1", "--quiet")
        assert done.returncode == 0, done.stderr
    gate = vecbench("compare", tmp_path / "a", tmp_path / "b", "--fail",
                    "qps:-10%,p95_ms:+10%,p99_ms:+10%,recall@10:0")
    assert gate.returncode == 0, gate.stdout


# ---------------------------------------------------------------------------------------------
# The gate never passes what it could not see: units that failed or are missing in NEW, rows
# without the rule's metric, a lost pairing

EMBEDDINGS = """\
name: emb
timing: {min_seconds: 0.01, min_passes: 3, latency_queries: 20}
datasets: [{npy: {base: base.npy, queries: queries.npy, name: corpus}}]
pipelines: [[pca: {n_components: 12}], [pca: {n_components: 24}]]
indexes: [{flat: {}}, {hnswlib: {build: {M: 8, ef_construction: 40}, search: {ef: 32}}}]
"""


def run_embeddings(folder, dim: int):
    """The 4 units of EMBEDDINGS over embeddings of ``dim``; their results folder."""
    import numpy as np

    from vecbench.run.experiment import load_experiment
    from vecbench.run.runner import run_experiment

    folder.mkdir()
    (folder / "exp.yaml").write_text(EMBEDDINGS)
    # validated before the embeddings are there (as when a new model's vectors land after the
    # experiment was checked): validate cannot see their dimension, the units fail at run time
    experiment = load_experiment(folder / "exp.yaml")
    rng = np.random.default_rng(0)
    np.save(folder / "base.npy", rng.standard_normal((400, dim)).astype("float32"))
    np.save(folder / "queries.npy", rng.standard_normal((20, dim)).astype("float32"))
    run_experiment(experiment, folder / "results", threads=1, log=lambda line: None)
    return folder / "results"


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    """BASE: 4 units on 32-d embeddings. NEW models: 16-d (the 2 pca(24) units fail at run
    time) and 8-d (all 4 fail)."""
    root = tmp_path_factory.mktemp("embeddings")
    return {"base": run_embeddings(root / "base", 32),
            "smaller": run_embeddings(root / "smaller", 16),
            "tiny": run_embeddings(root / "tiny", 8)}


def test_gate_fails_when_units_of_new_failed(embeddings):
    done = vecbench("compare", embeddings["base"], embeddings["smaller"], "--fail",
                    "recall@10:-0.01")
    assert done.returncode == 1, done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED in NEW")]
    assert len(failed) == 2 and all("pca.n_components: expected at most the input dimension "
                                    "(n_features = 16), got 24): dataset=corpus "
                                    "pipeline=pca(n_components=24)"
                                    in line for line in failed)
    assert "FAIL: 0 rule failures, 2 configurations missing from or failed in NEW" in done.stdout
    allowed = vecbench("compare", embeddings["base"], embeddings["smaller"], "--fail",
                       "recall@10:-0.01", "--allow-missing")
    assert allowed.returncode == 0, allowed.stdout
    assert allowed.stdout.count("(allowed by --allow-missing)") == 2


def test_gate_fails_when_every_unit_of_new_failed(embeddings):
    done = vecbench("compare", embeddings["base"], embeddings["tiny"], "--fail",
                    "recall@10:-0.01")
    assert done.returncode == 1, done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED in NEW")]
    assert len(failed) == 4 and all("input dimension (n_features = 8)" in line for line in failed)
    assert "MISSING" not in done.stdout   # each is named as failed, with its reason
    assert "BASE and NEW share no configuration" in done.stdout
    allowed = vecbench("compare", embeddings["base"], embeddings["tiny"], "--fail",
                       "recall@10:-0.01", "--allow-missing")
    assert allowed.returncode == 1, allowed.stdout   # nothing compared is never a pass


def test_gate_fails_on_new_without_rows(embeddings, tmp_path):
    (tmp_path / "empty" / "runs").mkdir(parents=True)   # a run that never finished a unit
    done = vecbench("compare", embeddings["base"], tmp_path / "empty", "--fail",
                    "recall@10:-0.01")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "note: NEW has no result rows" in done.stdout
    assert done.stdout.count("MISSING in NEW: dataset=corpus") == 4


def test_gate_fails_when_a_rule_metric_is_not_measured(embeddings, tmp_path):
    base = compare.load_table(embeddings["base"])
    base.loc[base["index"] == "flat", "recall@10"] = float("nan")
    base.to_csv(tmp_path / "base.csv", index=False)
    done = vecbench("compare", tmp_path / "base.csv", embeddings["base"], "--fail",
                    "recall@10:-0.01")
    assert done.returncode == 1, done.stdout
    unjudged = [line for line in done.stdout.splitlines() if line.startswith("UNJUDGED")]
    assert len(unjudged) == 1 and unjudged[0].startswith(
        "UNJUDGED recall@10: not measured in BASE at 2 configurations (e.g. dataset=corpus "
        "pipeline=pca(") and "index=flat " in unjudged[0]
    allowed = vecbench("compare", tmp_path / "base.csv", embeddings["base"], "--fail",
                       "recall@10:-0.01", "--allow-missing")
    assert allowed.returncode == 0, allowed.stdout
    # the rule's metric absent from NEW's table
    compare.load_table(embeddings["base"]).drop(columns=["p99_ms"]).to_csv(
        tmp_path / "new.csv", index=False)
    done = vecbench("compare", embeddings["base"], tmp_path / "new.csv", "--fail",
                    "recall@10:-0.01,p99_ms:+50%")
    assert done.returncode == 1, done.stdout
    assert "UNJUDGED p99_ms: not measured in NEW at 4 configurations" in done.stdout
    # in neither table: a typo, one line, exit 2
    typo = vecbench("compare", embeddings["base"], tmp_path / "new.csv", "--fail", "p98_ms:+5%")
    assert typo.returncode == 2 and len(typo.stderr.strip().splitlines()) == 1


def test_a_spec_change_still_reports_failing_bounds(embeddings, results):
    """BASE and NEW share no configuration: the lost pairing and the bounds NEW fails on its
    own are both reported."""
    done = vecbench("compare", embeddings["base"], results, "--fail",
                    "recall@10:-0.01,recall@10>=0.999")
    assert done.returncode == 1, done.stdout
    assert "REGRESSION BASE and NEW share no configuration" in done.stdout
    frame = compare.load_table(results)
    low = frame[frame["recall@10"] < 0.999]
    assert len(low) >= 1
    assert done.stdout.count("REGRESSION recall@10: expected >= 0.999, measured") == len(low)


def test_bounds_parse_and_judge_new_alone():
    bound, change = compare.parse_rules("recall@10>=0.95,recall@10:-0.01")
    assert isinstance(bound, compare.Bound) and bound.holds(0.95) and not bound.holds(0.9144)
    base = table(**{"recall@10": [0.99, 0.99]})
    new = table(**{"recall@10": [0.99, 0.9144]})
    result = compare.compare(base, new, [bound])
    assert result.failures == ["recall@10: expected >= 0.95, measured 0.9144 at dataset=d "
                               "pipeline=float32 index=hnswlib build.M=16 search.ef=40 "
                               "ordering=original repeat=0 k=10"]
    assert list(result.table["failed"]) == ["", "recall@10"]


def test_a_p99_rise_within_the_measured_spread_does_not_fail():
    base = table(**{"p99_ms": [1.0, 1.0], "p99_ms_spread": [0.40, 0.02]})
    new = table(**{"p99_ms": [1.2, 1.2], "p99_ms_spread": [0.40, 0.02]})
    result = compare.compare(base, new, compare.parse_rules("p99_ms:+10%"))
    # +20%: inside a 40% spread (the intervals overlap), outside a 2% one
    assert list(result.table["failed"]) == ["", "p99_ms"] and len(result.failures) == 1


def test_a_percentile_spread_narrows_with_more_calls():
    import numpy as np

    from vecbench.evaluate.metrics import percentile_spread

    rng = np.random.default_rng(0)
    few, many = rng.lognormal(0, 0.5, 20), rng.lognormal(0, 0.5, 5000)
    assert percentile_spread(many, 99) < percentile_spread(few, 99)
    assert percentile_spread(many, 50) < 0.1
    # with 20 calls, a p99's interval runs between the two largest
    ordered = np.sort(few)
    assert percentile_spread(few, 99) == pytest.approx(
        (ordered[-1] - ordered[-2]) / np.percentile(few, 99))
    assert percentile_spread(np.ones(50), 95) == 0.0


def test_configurations_that_failed_in_base_are_noted_not_expected(embeddings):
    result = compare.compare(compare.load_table(embeddings["smaller"]),
                             compare.load_table(embeddings["base"]),
                             compare.parse_rules("recall@10:-1"))   # other data: any drop
    assert result.ok and result.only_new == 2 and len(result.table) == 2
    assert result.notes[0].startswith("note: 2 configurations failed in BASE and are not "
                                      "compared (e.g. dataset=corpus pipeline=pca(n_components=24)")
