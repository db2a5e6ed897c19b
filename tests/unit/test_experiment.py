import pytest

from vecbench.core.errors import ConfigError, DataError
from vecbench.run.experiment import build_experiment, expand_params, load_experiment
from helpers import write


BASE = """
name: t
k: 10
datasets:
  - digits: {}
indexes:
  - flat: {}
"""


def test_leaf_lists_multiply_and_zip_pairs():
    combos = expand_params({"a": [1, 2], "b": [3, 4, 5], "c": "x"}, "p")
    assert len(combos) == 6 and {"a": 2, "b": 5, "c": "x"} in combos
    zipped = expand_params({"zip": {"a": [1, 2], "b": [10, 20]}, "c": [0, 1]}, "p")
    assert len(zipped) == 4
    assert {"a": 1, "b": 10, "c": 1} in zipped and {"a": 1, "b": 20, "c": 0} not in zipped


def test_zip_lengths_must_match():
    with pytest.raises(ConfigError, match="equal length"):
        expand_params({"zip": {"a": [1, 2], "b": [1]}}, "p")


def test_list_params_take_lists_as_values():
    assert expand_params({"hidden": [512, 256]}, "p", list_params={"hidden"}) == [
        {"hidden": [512, 256]}]
    assert len(expand_params({"hidden": [[8], [16, 8]]}, "p", list_params={"hidden"})) == 2


def test_units_and_rows_are_counted(tmp_path):
    path = write(tmp_path, """
        name: t
        repeat: 2
        datasets:
          - digits: {}
          - synthetic: {n_base: 500, intrinsic_dim: [4, 8]}
        indexes:
          - flat: {}
          - hnswlib: {build: {M: [8, 16]}, search: {ef: [10, 20, 40]}}
        orderings: [original, random]
        """)
    exp = load_experiment(path)
    # 3 datasets x (1 flat + 2 hnswlib builds) x 2 orderings x 2 repeats
    assert len(exp.units) == 3 * 3 * 2 * 2
    assert exp.n_rows == 3 * (1 + 2 * 3) * 2 * 2
    keys = {unit.key({}, 1, "") for unit in exp.units}
    assert len(keys) == len(exp.units)


def test_cases_give_explicit_combinations(tmp_path):
    path = write(tmp_path, """
        datasets: [digits]
        indexes: [flat]
        cases:
          - {index: {hnswlib: {build: {M: 8}, search: {ef: [16, 32]}}}}
          - {dataset: {synthetic: {n_base: 300}}, ordering: reverse}
          - {}
          - {}
        """)
    exp = load_experiment(path)
    names = sorted((u.dataset.name, u.index.name, u.ordering.name) for u in exp.units)
    assert names == [("digits", "flat", "original"), ("digits", "hnswlib", "original"),
                     ("synthetic", "flat", "reverse")]


def test_a_case_may_set_its_own_repeat(tmp_path):
    path = write(tmp_path, """
        datasets: [digits]
        indexes: [hnswlib]
        repeat: 2
        cases:
          - {ordering: random, repeat: 5}
          - {ordering: [lid_asc, {cluster: {n_clusters: 4}}], repeat: 1}
        """)
    exp = load_experiment(path)
    repeats = sorted((u.ordering.name, u.repeat) for u in exp.units)
    assert repeats == [("cluster", 0), ("lid_asc", 0)] + [("random", r) for r in range(5)]
    bad = write(tmp_path, "datasets: [digits]\nindexes: [flat]\ncases: [{repeat: 0}]\n",
                "bad.yaml")
    with pytest.raises(ConfigError, match=r"cases\[0\]\.repeat: expected an integer >= 1"):
        load_experiment(bad)


@pytest.mark.parametrize("snippet, expected", [
    ("hnswlib: {build: {M: sixteen}}", "exp.yaml: indexes[0].hnswlib.build.M: expected an integer"),
    ("hnswlib: {build: {M: 1}}",
     "indexes[0].hnswlib.build.M: expected an integer in [2, 10000], got 1"),
    ("hnswlb: {}", "indexes[0]: unknown index 'hnswlb' (did you mean 'hnswlib'?)"),
    ("hnswlib: {search: {eff: 10}}", "indexes[0].hnswlib.search.eff"),
    ("hnswlib: {biuld: {M: 8}}", "indexes[0].hnswlib.biuld"),
])
def test_bad_index_values_name_file_path_and_value(tmp_path, snippet, expected):
    path = write(tmp_path, f"datasets: [digits]\nindexes:\n  - {snippet}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("raw, expected", [
    ({"k": 0}, "k: expected an integer >= 1, got 0"),
    ({"repeat": "x"}, "repeat: expected an integer >= 1"),
    ({"datasets": [{"digitz": {}}]}, "datasets[0]: unknown dataset 'digitz' (did you mean 'digits'?)"),
    ({"datasets": [{"digits": {"n_queries": -5}}]}, "datasets[0].digits.n_queries"),
    ({"orderings": ["rnadom"]}, "orderings[0]: unknown ordering 'rnadom' (did you mean 'random'?)"),
    ({"indexs": []}, "indexs: unknown parameter of the experiment (did you mean 'indexes'?)"),
    ({"datasets": []}, "datasets: expected a non-empty list"),
])
def test_bad_top_level_values(raw, expected):
    spec = {"datasets": ["digits"], "indexes": ["flat"], **raw}
    with pytest.raises(ConfigError) as info:
        build_experiment(spec)
    assert expected in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(DataError, match="no such experiment file"):
        load_experiment(tmp_path / "nope.yaml")
    bad = write(tmp_path, "datasets: [digits\nindexes: {", name="bad.yaml")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+"):
        load_experiment(bad)
