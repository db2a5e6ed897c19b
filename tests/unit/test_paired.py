"""vecbench paired: per-query differences against a baseline with bootstrap intervals."""

import textwrap

import numpy as np
import pytest

from vecbench.evaluate import paired

from vecbench.run import runner
from vecbench.cli.commands import main
from vecbench.core.errors import ConfigError
from vecbench.run.experiment import load_experiment


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paired")
    path = tmp / "exp.yaml"
    path.write_text(textwrap.dedent("""
        datasets: [{synthetic: {n_base: 1500, n_queries: 60, dim: 32, intrinsic_dim: 8}}]
        pipelines: [[], [pca: {n_components: 4}], [float16: {}]]
        indexes: [flat]
        """))
    runner.run_experiment(load_experiment(path), tmp / "r", threads=1, log=lambda line: None)
    return tmp / "r"


def test_bootstrap_interval_covers_the_mean_and_is_degenerate_for_constants():
    rng = np.random.default_rng(0)
    delta = rng.normal(-0.1, 0.2, size=400)
    mean, low, high = paired.bootstrap_mean(delta)
    assert low < mean < high and high < 0  # a clear loss: the interval excludes 0
    assert high - low == pytest.approx(2 * 1.96 * delta.std() / 20, rel=0.15)
    assert paired.bootstrap_mean(np.zeros(10)) == (0.0, 0.0, 0.0)


def test_paired_table_against_exact_search(results):
    frame = paired.per_query_frame(results)
    table = paired.paired_table(frame, "pipeline == 'float32'", "recall@10").set_index("pipeline")
    assert table.loc["float32", "delta"] == 0 and table.loc["float32", "worse"] == 0
    pca = table.loc["pca(n_components=4)"]
    assert pca["delta"] < 0 and pca["ci_high"] < 0 and pca["worse"] > 0
    assert pca["recall@10"] == pytest.approx(pca["baseline"] + pca["delta"])
    assert table.loc["float16", "ci_low"] <= table.loc["float16", "delta"] <= 0.0


def test_cli_prints_markdown_and_csv(results, tmp_path, capsys):
    csv = tmp_path / "t.csv"
    assert main(["paired", str(results), "--baseline", "pipeline == 'float32'", "--metric",
                 "recall@10", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| dataset | pipeline") and "difference [95% CI]" in out
    assert csv.read_text().count("\n") == 4


@pytest.mark.parametrize("argv, message", [
    (["--baseline", "pipeline ==", "--metric", "recall@10"], "--baseline: not a valid row filter"),
    (["--baseline", "colour == 'red'", "--metric", "recall@10"], "name 'colour' is not defined"),
    (["--baseline", "index == 'flat'", "--metric", "recall@10"], "matches 3 rows"),
    (["--baseline", "pipeline == 'float32'", "--metric", "ndcg@10"], "unknown metric 'ndcg@10'"),
])
def test_bad_arguments_exit_2_with_one_line(results, capsys, argv, message):
    assert main(["paired", str(results), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_relative_show_sort_and_drop(results, capsys):
    assert main(["paired", str(results), "--baseline", "pipeline == 'float32'", "--metric",
                 "recall@10", "--relative", "--show", "bytes_per_vector",
                 "--sort=-recall@10,-pipeline", "--drop", "dataset,baseline"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "relative % [95% CI]" in lines[0] and "| dataset |" not in lines[0]
    assert lines[2].startswith("| float32 |") and "+0.00 [+0.00, +0.00]" in lines[2]
    assert main(["paired", str(results), "--baseline", "pipeline == 'float32'", "--metric",
                 "recall@10", "--sort", "colour"]) == 2
    capsys.readouterr()
    # several keys: bytes descending, then recall descending
    assert main(["paired", str(results), "--baseline", "pipeline == 'float32'", "--metric",
                 "recall@10", "--show", "bytes_per_vector",
                 "--sort=-bytes_per_vector,-recall@10", "--drop", "dataset,index"]) == 0
    rows = [line.split(" | ")[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == ["| float32", "| float16", "| pca(n_components=4)"]


def test_within_pairs_each_group_with_its_own_baseline(capsys, results):
    import pandas as pd

    def row(pipeline, size, values):
        return {"dataset": "d", "pipeline": pipeline, "index": "flat", "bytes_per_vector": size,
                "recall@10": float(np.mean(values)), "per_query": {"recall@10": values}}

    frame = pd.DataFrame([row("pca(n_components=4)", 16, [0.5, 0.6, 0.7]),
                          row("rp(n_components=4)", 16, [0.4, 0.5, 0.6]),
                          row("pca(n_components=8)", 32, [0.8, 0.9, 0.9]),
                          row("rp(n_components=8)", 32, [0.8, 0.8, 0.9])])
    table = paired.paired_table(frame, "pipeline in ['pca(n_components=4)', 'pca(n_components=8)']", "recall@10",
                                within=["dataset", "bytes_per_vector"]).set_index("pipeline")
    assert table.loc["rp(n_components=4)", "baseline"] == pytest.approx(0.6)
    assert table.loc["rp(n_components=4)", "delta"] == pytest.approx(-0.1)
    assert table.loc["rp(n_components=8)", "baseline"] == pytest.approx(2.6 / 3)
    assert table.loc["rp(n_components=8)", "delta"] == pytest.approx(-0.1 / 3)
    with pytest.raises(ConfigError, match="matches 2 rows of dataset 'd'"):
        paired.paired_table(frame, "pipeline in ['pca(n_components=4)', 'pca(n_components=8)']", "recall@10")
    assert main(["paired", str(results), "--baseline", "index == 'flat'", "--metric",
                 "recall@10", "--within", "dataset,colour"]) == 2
    assert "--within: unknown column 'colour'" in capsys.readouterr().err
