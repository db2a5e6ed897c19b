"""Plots: Pareto fronts, one line per configuration family, labels that never overprint,
empty facets dropped, LID from a results folder, PNG/SVG/PDF, no pyplot state."""

import itertools
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vecbench.present import plots
from vecbench.core.errors import ConfigError, DataError
from matplotlib.text import Text

from vecbench.present.plot_labels import text_boxes


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


def test_pareto_has_a_panel_per_dataset_a_line_per_family_and_front():
    fig = plots.pareto(results_frame())
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in axes] == ["dataset=a", "dataset=b"]
    ax = axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel().startswith("recall@10")
    # the pipeline differs within a sweep here: one family per (index, pipeline)
    for label in ("hnswlib p0", "hnswlib p1", "faiss_ivf p0", "faiss_ivf p1"):
        assert len(lines_with_label(ax, label)) == 1, label
    assert len(lines_with_label(ax, "Pareto front")) == 1
    assert ax.get_title(loc="right") == "better → ↑"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]   # once, below the panels
    assert len(legend) == len(set(legend)) and "Pareto front" in legend


def family_frame():
    """hnswlib at M 8/16/32 and faiss_ivf, two orderings, two pipelines: the case in which the
    old plot joined M=8, 16 and 32 (and both pipelines) into one zig-zag line."""
    rows = []
    rng = np.random.default_rng(4)
    for pipeline, (index, build), ordering in itertools.product(
            ("float32", "pca(n_components=64)"),
            [("hnswlib", {"build.M": m, "build.ef_construction": 200}) for m in (8, 16, 32)]
            + [("faiss_ivf", {"build.nlist": 256})], ("original", "random")):
        for ef in (10, 40, 160):
            rows.append({"dataset": "d", "pipeline": pipeline, "index": index, **build,
                         "search.ef": ef, "ordering": ordering, "repeat": 0, "k": 10,
                         "recall@10": rng.uniform(0.5, 1), "qps": rng.uniform(1e2, 1e4),
                         "bytes_per_vector": 1536.0 if pipeline == "float32" else 256.0})
    return pd.DataFrame(rows)


def test_a_pareto_line_joins_one_configuration_family_only():
    frame = family_frame()
    ax = plots.pareto(frame).axes[0]
    family = ["index", "build.M", "build.ef_construction", "build.nlist", "pipeline"]
    keys = {tuple(map(plots.value_text, row)) for row in frame[family].to_numpy(object)}
    lines = [line for line in ax.get_lines() if line.get_label() != "Pareto front"]
    # one line per family and build (ordering): 2 pipelines x 4 configurations x 2 orderings
    assert len(lines) == 16
    for line in lines:
        xs = set(np.round(line.get_xdata(), 12))
        rows = frame[np.isin(np.round(frame["recall@10"], 12), list(xs))]
        assert len(rows) == 3 and len({tuple(map(plots.value_text, r))
                                       for r in rows[family].to_numpy(object)}) == 1
    labels = {line.get_label() for line in lines} - {"_nolegend_"}
    assert len(labels) == len(keys) == 8                    # each family once in the legend
    assert "hnswlib M=8 pca(n_components=64)" in labels      # constant ef_construction left out
    assert "faiss_ivf float32" in labels


def test_better_direction_follows_metrics():
    fig = plots.pareto(results_frame(), y="p99_ms")     # lower latency is better
    assert fig.axes[0].get_title(loc="right") == "better → ↓"
    fig = plots.pareto(results_frame(), x="search.ef")  # not a metric: no front, no x arrow
    ax = fig.axes[0]
    assert not lines_with_label(ax, "Pareto front")
    assert ax.get_title(loc="right") == "better ↑"


def test_empty_facets_get_no_panel():
    frame = results_frame()
    empty = frame[frame["dataset"] == "b"].assign(dataset="c", qps=np.nan)
    fig = plots.pareto(pd.concat([frame, empty]))
    assert [ax.get_title(loc="left") for ax in fig.axes if ax.get_visible()] == [
        "dataset=a", "dataset=b"]
    with pytest.raises(DataError, match="nothing to plot"):
        plots.pareto(empty)


def test_tradeoff_annotates_best_under_each_budget():
    frame = results_frame()
    fig = plots.tradeoff(frame[frame["dataset"] == "a"], budgets=[64, 256])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel().startswith("ndcg@10")
    notes = [t.get_text() for t in ax.texts if t.get_text().startswith("≤")]
    part = frame[(frame["dataset"] == "a") & (frame["bytes_per_vector"] <= 64)]
    assert len(notes) == 2 and notes[0].startswith(f"≤64: ndcg@10={part['ndcg@10'].max():.3f}")
    assert notes[0].endswith("\nhnswlib p0")  # the configuration, not only its colour
    long = plots.tradeoff(crowded_frame(2), budgets=[400], y="recall@10").axes[0].texts[-1]
    assert long.get_text().split("\n")[1:] == [  # wrapped at the pipeline's separators
        "pca(n_components=1)|", "int8(granularity=per_dimension,", "symmetric=False)"]
    # coloured by index family and quantizer (the default hue)
    assert {line.get_label() for line in ax.get_lines()} >= {
        "hnswlib + p0", "faiss_ivf + p1", "Pareto front"}
    # a table without resident bytes plots the codes, and says so
    assert ax.get_xlabel() == "bytes per vector (codes only)"


def crowded_frame(n=60):
    """Many pipelines with long names at nearly the same storage and quality: labels must
    still find free space."""
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "dataset": "d", "index": "flat", "k": 10,
        "pipeline": [f"pca(n_components={n_})|int8(granularity=per_dimension,symmetric=False)"
                     for n_ in range(n)],
        "bytes_per_vector": rng.choice([64.0, 96.0, 128.0, 192.0, 256.0, 384.0], n)
        * rng.uniform(0.97, 1.03, n),
        "recall@10": rng.uniform(0.80, 0.84, n)})


@pytest.mark.parametrize("budgets", [[64, 100, 130, 200, 260, 400], [66, 67, 68, 69]])
def test_budget_labels_never_overprint(budgets):
    fig = plots.tradeoff(crowded_frame(), budgets=budgets, y="recall@10")
    fig.draw_without_rendering()
    ax = fig.axes[0]
    notes = [t for t in ax.texts if t.get_text().startswith("≤")]
    assert notes
    boxes = text_boxes(fig, [*ax.texts, ax.title, *ax.get_xticklabels(), *ax.get_yticklabels(),
                             ax.xaxis.label, ax.yaxis.label, fig.legends[0]])
    boxes += text_boxes(fig, [ax.title, ax._left_title, ax._right_title])
    for a, b in itertools.combinations(boxes, 2):
        overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
        assert not overlap, (a, b)
    frame = ax.get_window_extent()
    for note in notes:           # inside the axes, away from the legend below
        box = Text.get_window_extent(note)  # the text (an Annotation's extent adds its arrow)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
        assert box.y1 <= frame.y1


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
        fig = plots.lid(data)
        ax = fig.axes[0]
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
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


def test_save_png_svg_and_pdf(tmp_path):
    fig = plots.pareto(results_frame())
    png = plots.save(fig, tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plots.save(fig, tmp_path / "a.svg")
    assert "<svg" in svg.read_text()
    pdf = plots.save(fig, tmp_path / "A.PDF")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ConfigError, match="-o: expected a file name ending in .png, .svg, .pdf"):
        plots.save(fig, tmp_path / "a.jpg")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A real (tiny) run: its records hold the queries' pointwise LID."""
    from vecbench.run.experiment import build_experiment
    from vecbench.run.runner import run_experiment

    folder = tmp_path_factory.mktemp("lid-results")
    experiment = build_experiment({"name": "tiny-lid", "k": 10,
                                   "datasets": [{"digits": {"n_queries": 50}}],
                                   "indexes": [{"flat": {}}]})
    run_experiment(experiment, folder, threads=1, log=lambda line: None)
    return folder


def test_lid_plot_of_a_results_folder_uses_the_records_query_lid(run_folder, tmp_path):
    from vecbench.cli import main

    from vecbench.run import records

    record = records.read_record(next((run_folder / "runs").glob("*.json")))
    values = list(records.load_reference(run_folder, record).query_lid)
    table = plots.lid_table(run_folder)
    assert list(table["lid"]) == values and set(table["dataset"]) == {record.dataset.name}
    out = tmp_path / "lid.pdf"
    assert main(["plot", str(run_folder), "--kind", "lid", "-o", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"
    legend = plots.lid(run_folder).legends[0].get_texts()[0].get_text()
    assert f"queries, MLE k=20, n {len(values)}" in legend


def test_lid_plot_is_refused_with_the_reason(run_folder, tmp_path, capsys):
    import json
    import shutil

    from vecbench.cli.commands import main

    folder = tmp_path / "old"
    shutil.copytree(run_folder, folder)
    for path in (folder / "runs").glob("*.json"):  # records of another vecbench: not readable
        record = json.loads(path.read_text())
        record["schema"] = 1
        path.write_text(json.dumps(record))
    assert main(["plot", str(folder), "--kind", "lid", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no pointwise LID to plot" in err
    assert "vecbench lid" in err
    with pytest.raises(DataError, match="results table holds no pointwise LID"):
        plots.lid(plots_table(run_folder))


def plots_table(folder):
    from vecbench.evaluate.compare import load_table
    return load_table(folder)


def test_no_pyplot_and_cli(tmp_path):
    csv = tmp_path / "results.csv"
    results_frame().to_csv(csv, index=False)
    code = ("import sys; from vecbench.cli.commands import main; "
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

    from vecbench.cli.commands import main

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


def test_lid_of_many_datasets_is_a_box_per_dataset_sorted_by_median():
    rng = np.random.default_rng(2)
    data = {f"set{i}": rng.normal(5 + 3 * ((i * 7) % 9), 1, 80) for i in range(9)}
    fig = plots.lid(data)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    medians = [np.median(data[label.split(" ")[0]]) for label in labels]
    assert len(labels) == 9 and medians == sorted(medians)
    assert all("n 80" in label for label in labels)
    assert not ax.containers                                 # no overlaid histograms


def test_hue_values_sort_naturally():
    frame = family_frame().assign(dataset="id4")
    frame = pd.concat([frame, frame.assign(dataset="id16"), frame.assign(dataset="id128")])
    fig = plots.pareto(frame[frame["index"] == "faiss_ivf"], hue="dataset", facet="index")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [label.split(" ")[0] for label in legend[:-1]][::2] == ["id4", "id16", "id128"]


@pytest.mark.parametrize("kind", ["pareto", "tradeoff"])
def test_a_series_looks_the_same_in_every_panel(kind):
    frame = results_frame()
    frame = frame[~((frame["dataset"] == "a") & (frame["index"] == "faiss_ivf"))]  # a lacks one
    fig = plots.plot(kind, frame, hue="index")
    styles = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_label() in ("Pareto front", "_nolegend_"):
                continue
            style = (line.get_color(), line.get_marker(), line.get_linestyle())
            assert styles.setdefault(line.get_label(), style) == style, line.get_label()
    legend = fig.legends[0]
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        if text.get_text() in styles:
            assert (handle.get_color(), handle.get_marker(), handle.get_linestyle()) == \
                styles[text.get_text()]


# -- labels, legends and colours on a real grid -------------------------------------------


def grid_frame():
    """A grid as collect writes it (pandas 3: nullable Int64 and string columns): parameters
    an index does not take are missing, not zero."""
    rows = []
    for index, build, quantization in (
            ("hnswlib", {"build.M": 16}, "none"), ("hnswlib", {"build.M": 32}, "none"),
            ("faiss_pq", {"build.m": 48}, "index"),
            ("faiss_rabitq", {"build.bits": 4}, "index"), ("scann", {}, "index")):
        for pipeline in ("float32", "pca(n_components=64)"):
            for i, ef in enumerate((10, 40)):
                rows.append({"dataset": "scifact", "index": index, "pipeline": pipeline,
                             "pipeline_kind": pipeline.split("(")[0], "search.ef": ef
                             if index == "hnswlib" else None, **build, "k": 10,
                             "ordering": "original", "repeat": 0, "status": "ok",
                             "recall@10": 0.5 + 0.1 * i + 0.01 * len(index), "qps": 1000 / (1 + i),
                             "bytes_per_vector": 48.0 + 100 * i,
                             "resident_bytes_per_vector": 120.0 + 100 * i})
    frame = pd.DataFrame(rows).convert_dtypes()
    assert frame["build.M"].isna().any() and str(frame["build.M"].dtype) == "Int64"
    return frame


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


@pytest.mark.parametrize("kind", ["pareto", "tradeoff"])
def test_labels_have_no_missing_value_markers(kind):
    fig = plots.plot(kind, grid_frame(), budgets=[200] if kind == "tradeoff" else None)
    fig.draw_without_rendering()
    texts = legend_texts(fig) + [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts
    for text in texts:
        assert not re.search(r"<NA>|\bnan\b|\bNaT\b|\bNone\b", text, re.IGNORECASE), text
    if kind == "pareto":  # the parameters that are there still show
        assert any("M=16" in text for text in texts) and any("ef=" not in t for t in texts)


def test_value_text_drops_every_missing_value():
    assert [plots.value_text(v) for v in (pd.NA, pd.NaT, np.nan, None, np.float32(16.0),
                                          pd.array([2, None], dtype="Int64")[1])] == \
        ["", "", "", "", "16", ""]


def long_label_frame():
    """One panel, a family per pipeline with long parameters: a label alone is wider than the
    figure (what a real grid's factory strings and pipelines give)."""
    frame = results_frame()
    frame = frame[frame["dataset"] == "a"]
    return frame.assign(pipeline=[f"pca(n_components={64 + i % 7},whiten=False)|float8(format="
                                  f"E4M3,scale=per_dimension)|MPAD(b={i % 5},alpha=0.1)"
                                  for i in range(len(frame))])


@pytest.mark.parametrize("kind, frame", [("pareto", long_label_frame),
                                         ("tradeoff", long_label_frame),
                                         ("pareto", grid_frame)])
def test_the_saved_legend_lies_inside_the_figure(kind, frame, tmp_path):
    fig = plots.plot(kind, frame())
    plots.save(fig, tmp_path / "f.png")  # measured as saved: after the final layout
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    assert fig.legends
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        assert box.x0 >= figure_box.x0 - 0.5 and box.x1 <= figure_box.x1 + 0.5, (box, figure_box)
        assert box.y0 >= figure_box.y0 - 0.5 and box.y1 <= figure_box.y1 + 0.5, (box, figure_box)
        # and below the panels, not over them
        assert all(box.y1 <= ax.get_window_extent(renderer).y0 + 0.5 for ax in fig.axes)


def test_tradeoff_colours_pq_and_rabitq_apart_and_plots_resident_bytes():
    fig = plots.tradeoff(grid_frame())
    ax = fig.axes[0]
    colours = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert colours["faiss_pq"] != colours["faiss_rabitq"] != colours["scann"]
    assert colours["faiss_pq"] != colours["hnswlib"]
    assert colours["faiss_pq + pca"] != colours["faiss_pq"]   # the pipeline's quantizer too
    assert ax.get_xlabel().startswith("resident bytes per vector")
    xs = np.concatenate([line.get_xdata() for line in ax.get_lines()
                         if line.get_label() != "Pareto front"])
    assert set(xs) == {120.0, 220.0}   # the resident column, not the codes (48, 148)


def test_index_quantizer_names_the_factory_and_pipeline():
    frame = pd.DataFrame({"index": ["faiss_factory", "flat", "flat"],
                          "build.factory": ["IVF64,RaBitQ", None, None],
                          "pipeline_kind": ["float32", "float8", "float32"]})
    assert list(plots.index_quantizer(frame)) == ["faiss_factory IVF64,RaBitQ",
                                                  "flat + float8", "flat"]


def test_the_pareto_front_is_the_legends_last_entry():
    frame = results_frame()
    fig = plots.pareto(frame, hue="dataset", facet="index")   # each panel adds its own series
    assert legend_texts(fig)[-1] == "Pareto front"
    assert legend_texts(fig).count("Pareto front") == 1
