"""Seeds as a repeat axis: repeat r re-seeds the fits, and paired's interval resamples seeds,
then queries (issue 29). Synthetic per-query data whose answer is known."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from vecbench.cli.commands import main
from vecbench.core.errors import ConfigError
from vecbench.evaluate import bootstrap, paired
from vecbench.run import runner
from vecbench.run.experiment import load_experiment


def frame_of(rows):
    """A paired input frame: (pipeline, repeat, per-query recall@10) -> the columns paired reads."""
    return pd.DataFrame([{"dataset": "d", "pipeline": p, "index": "flat", "repeat": r, "k": 10,
                          "recall@10": float(np.mean(v)), "per_query": {"recall@10": v}}
                         for p, r, v in rows])


def seeded_rows(n_seeds=5, n_queries=400, seed_sd=0.05, query_sd=0.01, shift=0.0, rng=None):
    """A baseline and a candidate whose difference moves by ``seed_sd`` from seed to seed."""
    rng = rng or np.random.default_rng(1)
    hard = rng.uniform(0.2, 0.9, n_queries)  # per-query level shared by both and every seed
    rows = []
    for r in range(n_seeds):
        offset = shift + rng.normal(0, seed_sd)
        rows.append(("base", r, hard + rng.normal(0, query_sd, n_queries)))
        rows.append(("candidate", r, hard + offset + rng.normal(0, query_sd, n_queries)))
    return rows


def width(low, high):
    return high - low


def test_seed_variance_widens_the_interval_beyond_the_queries_alone():
    table = paired.paired_table(frame_of(seeded_rows()), "pipeline == 'base'", "recall@10")
    row = table.set_index("pipeline").loc["candidate"]
    assert row["seeds"] == 5
    seeds_and_queries = width(row["ci_low"], row["ci_high"])
    queries_only = width(row["ci_queries_low"], row["ci_queries_high"])
    # the seeds' spread (0.05) dwarfs the queries' (0.01 / sqrt(400)): 10x wider at least
    assert seeds_and_queries > 10 * queries_only
    assert row["ci_low"] <= row["delta"] <= row["ci_high"]


def test_without_seed_variance_the_two_level_interval_is_the_query_interval():
    rng = np.random.default_rng(3)
    deltas = np.tile(rng.normal(0.02, 0.1, 500), (5, 1))  # every seed gives the same answer
    two_level = bootstrap.seeds_and_queries(deltas)
    one_level = bootstrap.queries(deltas[0])
    assert width(two_level.low, two_level.high) == pytest.approx(
        width(one_level.low, one_level.high), rel=0.15)


def test_one_seed_gives_the_committed_per_query_interval():
    delta = np.random.default_rng(5).normal(0, 0.1, 300)
    one = bootstrap.seeds_and_queries(delta[None, :])
    assert (one.mean, one.low, one.high) == paired.bootstrap_mean(delta)


def test_p_value_small_for_a_clear_shift_and_large_for_none():
    rng = np.random.default_rng(7)
    assert bootstrap.queries(rng.normal(0.1, 0.1, 400)).p_value() < 0.01
    assert bootstrap.queries(np.linspace(-1, 1, 201)).p_value() > 0.5  # mean exactly 0


def test_each_seed_is_paired_with_the_baseline_of_the_same_seed():
    # the candidate equals the baseline seed by seed, while the seeds differ a lot: paired
    # seed by seed the difference is exactly 0; paired across seeds it would not be
    rng = np.random.default_rng(2)
    rows = []
    for r in range(5):
        values = rng.uniform(0, 1, 50)
        rows += [("base", r, values), ("same", r, values.copy())]
    row = paired.paired_table(frame_of(rows), "pipeline == 'base'", "recall@10") \
        .set_index("pipeline").loc["same"]
    assert (row["delta"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)


def test_a_seed_missing_from_the_baseline_is_a_one_line_error():
    rows = [r for r in seeded_rows(n_seeds=3) if not (r[0] == "base" and r[1] == 2)]
    with pytest.raises(ConfigError, match="has no repeat 2"):
        paired.paired_table(frame_of(rows), "pipeline == 'base'", "recall@10")


def test_seeds_none_keeps_every_repeat_apart():
    rows = seeded_rows(n_seeds=3)
    rows = [r for r in rows if r[0] == "candidate"] + [("base", 0, rows[0][2])]
    table = paired.paired_table(frame_of(rows), "pipeline == 'base'", "recall@10", seeds=None)
    assert len(table) == 4 and "seeds" not in table


def test_repeat_reseeds_every_seeded_fit_and_keeps_the_label(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(textwrap.dedent("""
        repeat: 3
        datasets: [{synthetic: {n_base: 600, n_queries: 40, dim: 16, intrinsic_dim: 4}}]
        pipelines: [[random_projection: {n_components: 4, seed: 10}], [truncate: {n_components: 4}]]
        indexes: [flat]
        """))
    units = load_experiment(path).units
    rp = [u for u in units if u.pipeline[0].name == "random_projection"]
    assert [u.fitted_pipeline()[0].params["seed"] for u in rp] == [10, 11, 12]
    assert len({u.labels()["pipeline"] for u in rp}) == 1          # one configuration
    assert len({u.spec_digest() for u in rp}) == 3                 # three results
    truncate = [u for u in units if u.pipeline[0].name == "truncate"]
    assert all(u.fitted_pipeline() == u.pipeline for u in truncate)  # nothing to re-seed
    runner.run_experiment(load_experiment(path), tmp_path / "r", threads=1,
                          log=lambda line: None)
    table = paired.paired_table(paired.per_query_frame(tmp_path / "r"),
                                "pipeline == 'truncate(n_components=4)'", "recall@10")
    row = table[table["pipeline"].str.startswith("random")].iloc[0]
    assert row["seeds"] == 3
    per_seed = paired.per_query_frame(tmp_path / "r").query("pipeline_kind == 'random_projection'")
    assert per_seed["recall@10"].nunique() > 1  # the three fits differ


def test_cli_reports_both_intervals(tmp_path, capsys):
    folder = tmp_path / "r"
    path = tmp_path / "e.yaml"
    path.write_text(textwrap.dedent("""
        repeat: 2
        datasets: [{synthetic: {n_base: 600, n_queries: 40, dim: 16, intrinsic_dim: 4}}]
        pipelines: [[], [random_projection: {n_components: 4}]]
        indexes: [flat]
        """))
    runner.run_experiment(load_experiment(path), folder, threads=1, log=lambda line: None)
    assert main(["paired", str(folder), "--baseline", "pipeline == 'float32'",
                 "--metric", "recall@10"]) == 0
    out = capsys.readouterr().out
    assert "| seeds |" in out and "queries only [95% CI]" in out


def builds(n_builds, n_queries, level, build_sd, rng, hard):
    """Per-query recall of ``n_builds`` builds: a shared query difficulty, a build offset."""
    return np.stack([hard + level + rng.normal(0, build_sd) + rng.normal(0, 0.01, n_queries)
                     for _ in range(n_builds)])


def test_two_groups_of_builds_cover_the_build_noise_and_find_a_real_shift():
    """Informed builds with no real effect, against random builds: the interval covers 0 about
    as often as it says, where one build against the random mean over queries alone would call
    most of them shifted. A real 8-point shift (about 7 standard errors) is found."""
    rng = np.random.default_rng(11)
    hard = rng.uniform(0.3, 0.9, 200)
    covered = covered_by_queries_alone = 0
    for _ in range(40):
        random_orders = builds(30, 200, 0.0, 0.03, rng, hard)
        informed = builds(10, 200, 0.0, 0.03, rng, hard)
        noise = bootstrap.two_groups_and_queries(informed, random_orders, resamples=2000)
        covered += noise.low < 0 < noise.high
        one = bootstrap.queries(informed[0] - random_orders.mean(axis=0), resamples=2000)
        covered_by_queries_alone += one.low < 0 < one.high
    assert covered >= 33              # nominal 95%: 38 of 40
    assert covered_by_queries_alone <= 15
    shifted = bootstrap.two_groups_and_queries(builds(10, 200, 0.08, 0.03, rng, hard),
                                               builds(30, 200, 0.0, 0.03, rng, hard))
    assert shifted.low > 0.03 and shifted.p_value() < 0.01


def test_two_groups_must_share_their_queries():
    with pytest.raises(ValueError, match="share their queries"):
        bootstrap.two_groups_and_queries(np.zeros((3, 10)), np.zeros((4, 11)))
