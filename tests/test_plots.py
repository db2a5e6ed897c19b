"""Plots: Pareto fronts, directions from METRICS, column checks, no pyplot state."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vecbench import plots
from vecbench.errors import ConfigError


def brute_front(x, y, x_higher, y_higher):
    sx, sy = (x if x_higher else -x), (y if y_higher else -y)
    keep = []
    for i in range(len(x)):
        dominated = np.any((sx >= sx[i]) & (sy >= sy[i]) & ((sx > sx[i]) | (sy > sy[i])))
        if not dominated:
            keep.append(i)
    return keep


@pytest.mark.parametrize("x_higher, y_higher", [(True, True), (True, False), (False, True)])
def test_pareto_front_matches_brute_force(x_higher, y_higher):
    rng = np.random.default_rng(3)
    x, y = rng.random(300), rng.random(300)
    front = plots.pareto_front(x, y, x_higher, y_higher)
    unique_points = {(x[i], y[i]) for i in brute_front(x, y, x_higher, y_higher)}
    assert {(x[i], y[i]) for i in front} == unique_points
    assert np.all(np.diff(x[front]) >= 0)          # drawn left to right


def results_frame(n_repeats=3):
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("a", "b"):
        for index, ef_list in (("hnswlib", [10, 40, 160]), ("faiss_ivf", [1, 8])):
            for ordering in ("original", "random"):
                for repeat in range(n_repeats):
                    for i, ef in enumerate(ef_list):
                        recall = min(1.0, 0.6 + 0.15 * i + rng.normal(0, 0.01))
                        rows.append({"dataset": dataset, "pipeline": f"p{i % 2}",
                                     "index": index, "search.ef": ef, "ordering": ordering,
                                     "repeat": repeat, "k": 10, "recall@10": recall,
                                     "ndcg@10": recall * 0.7, "qps": 1e4 / (1 + i),
                                     "p99_ms": 0.1 * (1 + i),
                                     "bytes_per_vector": [64, 256, 512][i % 3],
                                     "status": "ok"})
    return pd.DataFrame(rows)


def lines_with_label(ax, label):
    return [line for line in ax.get_lines() if line.get_label() == label]


def test_pareto_has_a_panel_per_dataset_series_per_index_and_front():
    fig = plots.pareto(results_frame())
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["dataset=a", "dataset=b"]
    ax = axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel().startswith("recall@10")
    assert len(lines_with_label(ax, "hnswlib")) == 1 and len(lines_with_label(ax, "faiss_ivf")) == 1
    assert len(lines_with_label(ax, "Pareto front")) == 1
    assert any(t.get_text() == "better → ↑" for t in ax.texts)


def test_better_direction_follows_metrics():
    fig = plots.pareto(results_frame(), y="p99_ms")     # lower latency is better
    assert any(t.get_text() == "better → ↓" for t in fig.axes[0].texts)
    fig = plots.pareto(results_frame(), x="search.ef")  # not a metric: no front, no x arrow
    ax = fig.axes[0]
    assert not lines_with_label(ax, "Pareto front")
    assert any(t.get_text() == "better ↑" for t in ax.texts)


def test_tradeoff_annotates_best_under_each_budget():
    frame = results_frame()
    fig = plots.tradeoff(frame[frame["dataset"] == "a"], budgets=[64, 256])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel().startswith("ndcg@10")
    notes = [t.get_text() for t in ax.texts if t.get_text().startswith("≤")]
    part = frame[(frame["dataset"] == "a") & (frame["bytes_per_vector"] <= 64)]
    assert len(notes) == 2 and f"ndcg@10={part['ndcg@10'].max():.3f}" in notes[0]
    assert {line.get_label() for line in ax.get_lines()} >= {"p0", "p1", "Pareto front"}


def test_ordering_plot_has_intervals_across_repeats():
    fig = plots.ordering(results_frame(), hue="index")
    ax = fig.axes[0]
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == ["original", "random"]
    assert "95% CI" in ax.get_ylabel()
    assert len(ax.containers) == 2                 # one errorbar series per index
    one = plots.ordering(results_frame(n_repeats=1))  # a single repeat: a zero-width interval
    assert one.axes[0].containers


def test_lid_histogram_from_frame_or_mapping():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"dataset": ["x"] * 100 + ["y"] * 50,
                          "lid": np.r_[rng.normal(10, 1, 100), rng.normal(20, 2, 50)]})
    for data in (frame, {"x": frame.lid[:100].to_numpy(), "y": frame.lid[100:].to_numpy()}):
        ax = plots.lid(data).axes[0]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(legend) == 2 and legend[0].startswith("x (n 100, median 10")
        # densities, so that sets of different sizes compare: each histogram integrates to 1
        for bars in ax.containers:
            assert sum(p.get_height() * p.get_width() for p in bars) == pytest.approx(1.0)


def test_bad_column_is_a_config_error_listing_columns():
    with pytest.raises(ConfigError) as info:
        plots.plot("pareto", results_frame(), y="speed")
    message = str(info.value)
    assert message.startswith("--y: no column 'speed'") and "qps" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="--kind: expected one of"):
        plots.plot("pie", results_frame())


def test_save_png_and_svg(tmp_path):
    fig = plots.pareto(results_frame())
    png = plots.save(fig, tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plots.save(fig, tmp_path / "a.svg")
    assert "<svg" in svg.read_text()
    with pytest.raises(ConfigError, match="-o: expected a .png or .svg"):
        plots.save(fig, tmp_path / "a.jpg")


def test_no_pyplot_and_cli(tmp_path):
    csv = tmp_path / "results.csv"
    results_frame().to_csv(csv, index=False)
    code = ("import sys; from vecbench.cli import main; "
            f"rc = main(['plot', {str(csv)!r}, '--kind', 'tradeoff', '--budget', '256', "
            f"'-o', {str(tmp_path / 't.svg')!r}]); "
            "assert rc == 0; assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "t.svg").stat().st_size > 1000
    bad = subprocess.run([sys.executable, "-m", "vecbench", "plot", str(csv), "--hue", "colour",
                          "-o", str(tmp_path / "x.png")], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--hue: no column 'colour'" in bad.stderr


def test_plot_cli_where_facet_and_title(tmp_path, capsys):
    import pandas as pd

    from vecbench.cli import main

    frame = pd.DataFrame({
        "dataset": ["a", "a", "b", "b"], "pipeline": ["float32"] * 4, "index": ["flat", "x"] * 2,
        "recall@10": [1.0, 0.9, 1.0, 0.8], "qps": [10.0, 100.0, 20.0, 200.0], "k": 10,
        "search.ef": [None, 64, None, 64]})
    frame.to_csv(tmp_path / "results.csv", index=False)
    out = tmp_path / "p.png"
    assert main(["plot", str(tmp_path / "results.csv"), "--kind", "pareto", "-o", str(out),
                 "--where", "`search.ef` == 64", "--facet", "index", "--hue", "dataset",
                 "--title", "t"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for argv, message in [(["--where", "colour == 1"], "--where: not a valid row filter"),
                          (["--where", "qps > 1e9"], "matches no rows"),
                          (["--facet", "colour"], "--facet: no column 'colour'")]:
        assert main(["plot", str(tmp_path / "results.csv"), "-o", str(out), *argv]) == 2
        assert message in capsys.readouterr().err
