"""Rescoring cascades: binary -> int8 -> float32, each stage's copy counted, inside the query."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vecbench.run import rescore, runner
from vecbench.evaluate import results as vbresults
from vecbench.core.errors import ConfigError
from vecbench.run.experiment import load_experiment

EXPERIMENT = """
name: cascade
datasets: [{synthetic: {n_base: 3000, n_queries: 50, dim: 32, intrinsic_dim: 8, metric: cos}}]
pipelines: [[binary: {}]]
indexes:
  - flat:
      rescore:
        - {}
        - {oversample: 20, with: float32}
        - {cascade: [{with: int8, oversample: 10}, {with: float32, oversample: 2}]}
"""


def test_a_cascade_recovers_recall_and_counts_every_copy(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(EXPERIMENT))
    summary = runner.run_experiment(load_experiment(path), tmp_path / "r", threads=1)
    assert not summary.failed, summary.failed
    frame = vbresults.table(tmp_path / "r")
    plain = frame[frame["rescore_bytes_per_vector"].isna()].iloc[0]
    single = frame[frame["rescore.with"] == "float32"].iloc[0]
    cascade = frame[frame["rescore.cascade"] == "int8x10>float32x2"].iloc[0]
    assert cascade["rescore_bytes_per_vector"] == 32 + 4 * 32     # the int8 and float32 copies
    assert cascade["total_bytes_per_vector"] == 32 / 8 + 32 + 4 * 32
    assert single["rescore_bytes_per_vector"] == 4 * 32
    # both re-rankings recover what sign bits lose; the cascade's int8 stage costs little
    assert cascade["recall@10"] > plain["recall@10"] + 0.2
    assert cascade["recall@10"] >= single["recall@10"] - 0.05


def test_stages_keep_k_times_the_later_oversampling():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((500, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    cascade = rescore.Cascade(rescore.check({"cascade": [{"with": "int8", "oversample": 5},
                                                         {"with": "float32", "oversample": 4}]}),
                              base, base, {})
    assert cascade.oversample == 20
    candidates = np.tile(np.arange(200), (5, 1))
    ids = cascade.rerank(candidates, queries, "l2", 10)
    assert ids.shape == (5, 10)
    exact = np.argsort(((base[None, :200] - queries[:, None]) ** 2).sum(-1), axis=1)[:, :10]
    # float32 has the last word: among the int8 stage's 40, the exact top 10 of the 200 survive
    assert (np.sort(ids, axis=1) == np.sort(exact, axis=1)).mean() > 0.9


@pytest.mark.parametrize("setting, path", [
    ({"cascade": []}, "cascade"),
    ({"cascade": [{"with": "int8", "oversample": 0}]}, "cascade[0].oversample"),
    ({"cascade": [{"with": "float32"}, {"with": "fp8"}]}, "cascade[1].with"),
    ({"cascade": "int8x10>nope"}, "cascade"),
])
def test_bad_cascades_name_the_stage(setting, path):
    with pytest.raises(ConfigError) as info:
        rescore.check(setting)
    assert info.value.path == path


def test_validate_names_the_yaml_path_of_a_bad_stage(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("datasets: [digits]\nindexes:\n  - flat: {rescore: {cascade: "
                    "[{with: int8, oversample: 10}, {with: int4}]}}\n")
    done = subprocess.run([sys.executable, "-m", "vecbench", "validate", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "indexes[0].flat.rescore.cascade[1].with: expected one of float32, int8, got 'int4'" \
        in done.stderr
