"""The command line: exit codes, one-line errors without tracebacks, list and validate."""

import textwrap

import pytest

from vecbench.cli.commands import main
from helpers import vecbench


def test_validate_counts_units_and_rows(tmp_path):
    done = vecbench("validate", "experiments/quickstart.yaml")
    assert done.returncode == 0, done.stderr
    assert "build units" in done.stdout and "result rows" in done.stdout


@pytest.mark.parametrize("yaml_text, expected", [
    ("datasets: [digits]\nindexes: [{hnswlib: {build: {M: sixteen}}}]\n",
     "exp.yaml: indexes[0].hnswlib.build.M: expected an integer in [2, 10000], got 'sixteen'"),
    ("datasets: [digits]\nindexes: [flat]\nk: 0\n", "exp.yaml: k: expected an integer >= 1, got 0"),
    ("datasets: [{npy: {base: missing.npy, queries: q.npy}}]\nindexes: [flat]\n",
     "datasets[0].npy.base: no such file or folder 'missing.npy'"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, yaml_text, expected):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml_text)
    done = vecbench("run", path, "--results", tmp_path / "r")
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def _npy_experiment(tmp_path, base, queries):
    import numpy as np

    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    path = tmp_path / "exp.yaml"
    path.write_text("datasets: [{npy: {base: b.npy, queries: q.npy}}]\nindexes: [flat]\n")
    return path


def test_nan_vectors_and_dimension_mismatch(tmp_path):
    import numpy as np

    base = np.ones((20, 4), np.float32)
    base[3, 1] = np.nan
    done = vecbench("run", _npy_experiment(tmp_path, base, np.ones((2, 4), np.float32)),
                    "--results", tmp_path / "r")
    assert done.returncode == 2 and "row 3 has NaN or Inf" in done.stderr
    assert "Traceback" not in done.stderr
    done = vecbench("run", _npy_experiment(tmp_path, np.ones((20, 4), np.float32),
                                           np.ones((2, 5), np.float32)),
                    "--results", tmp_path / "r")
    assert done.returncode == 2 and "dimension mismatch" in done.stderr


def test_npy_paths_resolve_against_vecbench_data(tmp_path, monkeypatch):
    import numpy as np

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.save(data / "b.npy", rng.standard_normal((300, 8)).astype(np.float32))
    np.save(data / "q.npy", rng.standard_normal((5, 8)).astype(np.float32))
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    path = exp_dir / "e.yaml"
    path.write_text("datasets: [{npy: {base: b.npy, queries: q.npy, metric: cos}}]\n"
                    "indexes: [flat]\n")
    monkeypatch.setenv("VECBENCH_DATA", str(data))
    assert main(["run", str(path), "--results", str(tmp_path / "r")]) == 0


def test_list_and_usage_errors(capsys):
    assert main(["list", "indexes"]) == 0
    out = capsys.readouterr().out
    assert "hnswlib" in out and "faiss_ivf" in out
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "expected an experiment FILE or --example NAME" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["run", "x.yaml", "--jobs", "zero"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_wrong_shipped_neighbours_warn_mismatch_and_are_not_used(tmp_path):
    import numpy as np
    import pandas as pd

    from vecbench.datasets.formats_tables import write_hdf5
    from vecbench.compute.groundtruth import exact_knn
    from vecbench.core.registry import datasets

    ds = datasets.get("synthetic")(n_base=500, n_queries=40, dim=8, intrinsic_dim=8).load()
    neighbors = exact_knn(ds.base, ds.queries, 10, "l2").ids
    neighbors[:10] = neighbors[:10, ::-1] + 1  # 10 of 40 rows point at wrong vectors
    write_hdf5(ds, tmp_path / "d.hdf5", neighbors=neighbors,
               distances=np.zeros(neighbors.shape, np.float32))
    (tmp_path / "e.yaml").write_text("datasets: [{hdf5: {path: d.hdf5}}]\nindexes: [flat]\n")
    done = vecbench("run", tmp_path / "e.yaml", "--results", tmp_path / "r")
    assert done.returncode == 0, done.stderr
    assert "mismatch" in done.stderr and "25.0% of 40" in done.stderr
    frame = pd.read_csv(tmp_path / "r" / "results.csv")
    assert frame["recall@10"].iloc[0] == 1.0  # scored against recomputed ground truth
