"""Selection on held-out queries, Benjamini-Hochberg verdicts and TOST equivalence (issue 29),
on synthetic per-query data whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from vecbench.cli.commands import main
from vecbench.core.errors import ConfigError
from vecbench.evaluate import holdout, paired, verdicts


def frame_of(rows, dataset="d"):
    """(pipeline, group, per-query values) -> the columns paired reads."""
    return pd.DataFrame([{"dataset": dataset, "pipeline": p, "index": "flat", "group": g,
                          "k": 10, "recall@10": float(np.mean(v)), "per_query": {"recall@10": v}}
                         for p, g, v in rows])


def test_split_is_seeded_disjoint_and_complete():
    a, b = holdout.split(101, seed=3), holdout.split(101, seed=3)
    assert np.array_equal(a.select, b.select) and len(a.select) == 50 and len(a.report) == 51
    assert sorted(np.concatenate([a.select, a.report])) == list(range(101))
    assert not np.array_equal(a.select, holdout.split(101, seed=4).select)


def test_held_out_selection_removes_the_winners_curse():
    # 30 candidates, all exactly as good as the baseline on average: the best on the same
    # queries looks better than it is; picked on one half and scored on the other it does not
    rng = np.random.default_rng(0)
    n = 200
    base = rng.uniform(0.3, 0.7, n)
    rows = [("base", "base", base)] + [(f"c{i}", "cands", base + rng.normal(0, 0.2, n))
                                       for i in range(30)]
    frame = frame_of(rows)
    everything = paired.paired_table(frame, "pipeline == 'base'", "recall@10")
    in_sample_best = everything[everything["pipeline"] != "base"]["delta"].max()
    table = paired.paired_table(frame, "pipeline == 'base'", "recall@10", select_on=["group"],
                                split_seed=0).set_index("pipeline")
    assert len(table) == 2 and table["selected_on"].eq(100).all()
    winner = table.drop(index="base").iloc[0]
    # the winner is the best candidate on the selection half
    chosen = holdout.split(n, 0)
    scores = {p: v[chosen.select].mean() for p, g, v in rows if g == "cands"}
    assert winner.name == max(scores, key=scores.get)
    # ...and it is reported on the other half only, where it is no better than chance
    values = dict((p, v) for p, g, v in rows)[winner.name]
    assert winner["delta"] == pytest.approx((values - base)[chosen.report].mean())
    assert in_sample_best > 0.02 and winner["delta"] < in_sample_best
    assert winner["ci_low"] < 0 < winner["ci_high"]


def test_benjamini_hochberg_known_answer():
    # q_(i) = min over j >= i of p_(j) m / j
    q = verdicts.adjust([0.01, 0.04, 0.03, 0.02, 0.5])
    assert q == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.5])
    words, q, _ = verdicts.verdicts([0.1, -0.1, 0.1, 0.1, 0.1], [0.01, 0.04, 0.03, 0.02, 0.5])
    assert words == ["better", "worse", "better", "better", "inconclusive"]
    # lower is better (latency): a positive difference is worse
    words, _, _ = verdicts.verdicts([0.1], [0.001], higher_is_better=False)
    assert words == ["worse"]


def test_fdr_withdraws_what_chance_gives():
    # 75 comparisons with no true difference: unadjusted p < 0.05 calls ~4 of them; BH none
    rng = np.random.default_rng(11)
    p = rng.uniform(0, 1, 75)
    p[:3] = [0.012, 0.021, 0.03]
    words, q, _ = verdicts.verdicts(rng.normal(0, 1, 75), p)
    assert (p < 0.05).sum() >= 3 and words.count("inconclusive") == 75


@pytest.mark.parametrize("shift, noise, expected", [
    (0.0, 0.02, "equivalent within ±1"),       # tight around 0: inside ±1 point
    (0.0, 0.6, "inconclusive"),                # around 0 but too noisy to tell
    (0.05, 0.02, "better"),                    # 5 points: different, outside the margin
    (-0.05, 0.02, "worse"),
    (0.002, 0.005, "better, within ±1"),       # significant yet smaller than the margin
])
def test_tost_verdicts_against_a_margin(shift, noise, expected):
    rng = np.random.default_rng(5)
    n = 400
    base = rng.uniform(0.2, 0.8, n)
    rows = [("base", "b", base), ("x", "x", base + shift + rng.normal(0, noise, n))]
    table = paired.paired_table(frame_of(rows), "pipeline == 'base'", "recall@10",
                                margin=0.01).set_index("pipeline")
    assert table.loc["x", "verdict"] == expected.replace("±1", "±0.01")  # margin in units


def test_cli_margin_is_in_printed_points_and_the_split_is_recorded(tmp_path, capsys,
                                                                     monkeypatch):
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.8, 60)
    frame = frame_of([("base", "b", base), ("x", "x", base.copy()),
                      ("y", "x", base - 0.001)])
    monkeypatch.setattr(paired, "per_query_frame", lambda source: frame)
    assert main(["paired", "R", "--baseline", "pipeline == 'base'", "--metric", "recall@10",
                 "--margin", "1", "--select-on", "group", "--split-seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "selected on 30 queries and reported on the other 30 (split seed 2)" in out
    assert "equivalent within ±1" in out and "| verdict |" in out


def test_bad_margin_and_selection_columns_are_one_line_errors():
    frame = frame_of([("base", "b", np.ones(4)), ("x", "x", np.ones(4))])
    with pytest.raises(ConfigError, match="--margin.*> 0"):
        paired.paired_table(frame, "pipeline == 'base'", "recall@10", margin=0.0)
    with pytest.raises(ConfigError, match="--select-on.*unknown column 'budget'"):
        paired.paired_table(frame, "pipeline == 'base'", "recall@10", select_on=["budget"])
    with pytest.raises(ConfigError, match="--seeds.*unknown column 'fit_seed'"):
        paired.paired_table(frame, "pipeline == 'base'", "recall@10", seeds="fit_seed")


def test_the_baseline_row_is_no_comparison():
    rng = np.random.default_rng(4)
    base = rng.uniform(0.2, 0.8, 300)
    rows = [("base", "b", base), ("x", "x", base + 0.05 + rng.normal(0, 0.01, 300))]
    table = paired.paired_table(frame_of(rows), "pipeline == 'base'", "recall@10",
                                verdicts_=True).set_index("pipeline")
    assert table.loc["base", "verdict"] == "baseline" and np.isnan(table.loc["base", "q"])
    assert table.loc["x", "verdict"] == "better"
