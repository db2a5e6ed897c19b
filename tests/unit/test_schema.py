"""The typed run schema: each type round-trips, damaged files are one line, and records written
before it (schema 2, tests/data/legacy_schema2) collect to the very tables they gave then."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vecbench.run import records
from vecbench.evaluate import results as vbresults
from vecbench.core.errors import DataError
from vecbench.run.schema import (SCHEMA_VERSION, BuildInfo, DatasetInfo, EncodeInfo, FileRef,
                             RawResults, RawSearch, Reference, SchemaError, SettingInfo,
                             UnitRecord, UnitSpec, load_arrays)

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_schema2"


def ok_record() -> UnitRecord:
    spec = UnitSpec("exp", {"index": {"name": "hnswlib"}}, "abcd", {"k": 10, "columns": {}},
                    key="npy-hnswlib-1")
    return UnitRecord(
        spec, "ok", threads=2, host="h", worker="h:1", started=1.5, finished=2.5,
        peak_rss_bytes=123, dataset=DatasetInfo("b", 300, 12, 16, "l2", "f" * 32, False),
        contended=False,
        encode=EncodeInfo("simulated", 16.0, 64, 64, 0.1, 0.2, {"int8": {"base": 0.0}}, True,
                          16, 0.97),
        build=BuildInfo(0.01, 4000, 1, True, 16.0, 8.5, False, {"space": "l2"}),
        search_threads=2,
        settings=[SettingInfo({"ef": 10}, {}, [10]),
                  SettingInfo({"ef": 40}, {"oversample": 4, "with": "float32"}, [10, 100],
                              64.0, 0)],
        guards={"n_base": 300}, warnings=["a warning"], environment={"python": "3.11"},
        raw=FileRef("npy-hnswlib-1.npz", "00ff", bytes=100),
        reference=FileRef("b-1-k10-d100.npz", "ff00", binding="f-j"))


def test_a_record_round_trips_through_json():
    record = ok_record()
    data = json.loads(json.dumps(record.to_json()))
    assert data["schema"] == SCHEMA_VERSION and data["key"] == "npy-hnswlib-1"
    assert "prefix" not in data["settings"][0]   # a setting's place names its arrays
    assert UnitRecord.from_json(data) == record


def test_a_crash_record_round_trips_and_keeps_fields_of_a_newer_writer():
    record = UnitRecord(UnitSpec("exp", {}, "d", {}, key="k"), "crash", reason="SIGSEGV",
                        stage="build", traceback="tb", stderr_tail=["line"], exit_code=-11,
                        dataset=DatasetInfo("b"))
    data = record.to_json()
    assert "settings" not in data and "encode" not in data and data["dataset"] == {"name": "b"}
    data["queue_seconds"] = 3.0   # a field this version does not know: kept, not lost
    back = UnitRecord.from_json(json.loads(json.dumps(data)))
    assert back.extra == {"queue_seconds": 3.0} and back.to_json() == data
    assert back.exit_code == -11 and back.stderr_tail == ["line"]


@pytest.mark.parametrize("edit, why", [
    (lambda d: d.update(schema=1), "schema 1"),
    (lambda d: d.update(status="maybe"), "status 'maybe'"),
    (lambda d: d.pop("encode"), "'encode' missing"),
    (lambda d: d["build"].update(threads="two"), "'build.threads' is not an int"),
    (lambda d: d["settings"].append(7), "settings[2]"),
    (lambda d: d.update(spec=[]), "'spec' is not a dict"),
])
def test_a_record_that_is_not_what_it_claims_is_refused(edit, why):
    data = ok_record().to_json()
    edit(data)
    with pytest.raises(SchemaError, match=re.escape(why)):
        UnitRecord.from_json(data)


def raw_search(rng, wall=None) -> RawSearch:
    return RawSearch({10: rng.integers(0, 300, (12, 10)).astype(np.int32),
                      100: rng.integers(0, 300, (12, 100)).astype(np.int32)},
                     rng.random(5), rng.random(12), rng.random((12, 10)),
                     rng.random((12, 10)).astype(np.float32), wall)


def same_arrays(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(np.array_equal(a[n], b[n]) and a[n].dtype == b[n].dtype
                                      for n in a)


def test_raw_results_round_trip_through_npz(tmp_path):
    rng = np.random.default_rng(0)
    search = raw_search(rng, wall=0.25)
    search.to_npz(tmp_path / "one.npz")
    back = RawSearch.from_npz(tmp_path / "one.npz")
    assert back.client_wall_seconds == 0.25 and sorted(back.ids) == [10, 100]
    assert same_arrays(back.to_arrays(), search.to_arrays())
    raw = RawResults([raw_search(rng), search], rng.integers(0, 300, (12, 10)))
    raw.to_npz(tmp_path / "unit.npz")
    again = RawResults.from_npz(tmp_path / "unit.npz")
    assert int(load_arrays(tmp_path / "unit.npz")["schema_version"]) == SCHEMA_VERSION
    assert len(again.searches) == 2 and again.searches[0].client_wall_seconds is None
    assert same_arrays(again.to_arrays(), raw.to_arrays())


def test_a_unit_spec_and_a_record_round_trip_through_npz(tmp_path):
    """Every schema type has to_npz/from_npz with its version: a spec and a record keep their
    JSON as one member, so they come back equal, unknown fields included."""
    record = ok_record()
    record.extra = {"queue_seconds": 3.0}
    record.unit.to_npz(tmp_path / "spec.npz")
    record.to_npz(tmp_path / "record.npz")
    assert UnitSpec.from_npz(tmp_path / "spec.npz") == record.unit
    assert UnitRecord.from_npz(tmp_path / "record.npz") == record
    for name in ("spec.npz", "record.npz"):
        assert int(load_arrays(tmp_path / name)["schema_version"]) == SCHEMA_VERSION


@pytest.mark.parametrize("cls, member", [(UnitSpec, "unit_spec"), (UnitRecord, "record")])
def test_a_spec_or_record_npz_of_another_version_or_damaged_is_one_line(tmp_path, cls, member):
    arrays = ok_record().unit.to_arrays() if cls is UnitSpec else ok_record().to_arrays()
    for edit, why in [({"schema_version": np.int64(SCHEMA_VERSION + 1)}, "of schema 4"),
                      ({member: np.array("{not json")}, f"member '{member}' is not JSON"),
                      ({"other": np.zeros(1)}, f"no '{member}' array")]:
        changed = {**arrays, **edit}
        if "other" in edit:
            del changed[member]
        np.savez(tmp_path / "x.npz", **changed)
        with pytest.raises(SchemaError, match=re.escape(why)) as caught:
            cls.from_npz(tmp_path / "x.npz")
        assert len(str(caught.value).splitlines()) == 1


def judgments():
    from vecbench.compute.relevance import Judgments

    return Judgments({"q0": {"d1": 1, "d3": 2}, "q1": {"d0": 1}}, ["q0", "q1"],
                     ["d0", "d1", "d2", "d3"])


def test_a_reference_round_trips_bound_and_sealed(tmp_path):
    rng = np.random.default_rng(1)
    reference = Reference.computed(rng.integers(0, 4, (2, 4)), rng.random((2, 2)),
                                   rng.random(2), judgments(), 4, "fingerprint")
    assert reference.binding.startswith("fingerprint-") and reference.checksum
    reference.to_npz(tmp_path / "ref.npz")
    back = Reference.from_npz(tmp_path / "ref.npz")
    assert (back.binding, back.checksum, back.n_base, back.n_queries) == \
        (reference.binding, reference.checksum, 4, 2)
    assert (back.judgments.gains != reference.judgments.gains).nnz == 0
    assert same_arrays(back.to_arrays(), reference.to_arrays())
    plain = Reference.computed(rng.integers(0, 4, (2, 4)), rng.random((2, 2)), rng.random(2),
                               None, 4, "fingerprint")
    assert plain.binding != reference.binding   # the judgments are part of the binding


def test_a_schema_2_reference_is_read_and_written_back_unchanged():
    """The reference layout and checksum are those of schema 2: files are shared across it."""
    for path in (LEGACY / "reference").glob("*.npz"):
        arrays = load_arrays(path)
        assert same_arrays(Reference.from_arrays(arrays).to_arrays(), arrays)


def test_damaged_arrays_are_one_line(tmp_path):
    path = tmp_path / "raw.npz"
    RawResults([raw_search(np.random.default_rng(2))]).to_npz(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(SchemaError) as caught:
        RawResults.from_npz(path)
    assert len(str(caught.value).splitlines()) == 1 and "unreadable" in str(caught.value)
    np.savez(path, s0_ids=np.zeros(3), s0_batch_seconds=np.zeros(3))
    with pytest.raises(SchemaError, match="no s0_ids@<depth> array"):
        RawResults.from_npz(path)
    arrays = load_arrays(LEGACY / "reference" / "b-41c2bdcef3698e68-k10-d100.npz")
    arrays["query_lid"] = arrays["query_lid"] + 1
    with pytest.raises(SchemaError, match="do not match their checksum"):
        Reference.from_arrays(arrays)


@pytest.fixture
def legacy(tmp_path):
    folder = tmp_path / "legacy"
    shutil.copytree(LEGACY, folder)
    return folder


def test_records_of_schema_2_collect_to_the_same_tables(legacy):
    vbresults.collect(legacy)
    assert (legacy / "results.csv").read_bytes() == (LEGACY / "results.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(legacy / "per_query.parquet"),
                                  pd.read_parquet(LEGACY / "per_query.parquet"))
    statuses = {r.status for r in records.select(legacy).records}
    assert statuses == {"ok", "error", "crash"}


def test_records_of_schema_2_are_still_done(legacy):
    """Same keys, same files: a run over an old folder reruns nothing."""
    for path in (legacy / "runs").glob("*.json"):
        record = records.read_record(path)
        assert record.schema == 2
        assert records.is_done(legacy, path.stem) == (record.status == "ok")


def resign(folder: Path, path: Path, edit) -> None:
    """Edit a record's JSON and give it a valid digest again (what a foreign writer could do)."""
    data = json.loads(path.read_text())
    edit(data)
    data[records.DIGEST_FIELD] = records.record_digest(data)
    path.write_text(json.dumps(data))


def test_a_schema_2_record_whose_prefix_names_other_arrays_is_refused_in_one_line(legacy):
    path = next(p for p in (legacy / "runs").glob("npy-hnswlib-original*.json"))
    resign(legacy, path, lambda d: d["settings"][0].update(prefix="s1_"))
    with pytest.raises(DataError) as caught:
        records.read_record(path)
    text = str(caught.value)
    assert len(text.splitlines()) == 1 and str(path) in text and "settings[0].prefix" in text


def test_raw_results_that_do_not_match_the_record_are_one_line(legacy):
    path = next(p for p in (legacy / "runs").glob("npy-hnswlib-original*.json"))
    record = records.read_record(path)
    raw = records.load_raw(legacy, record)
    raw.searches.pop()   # one setting fewer than the record lists, re-signed
    record.raw = records.write_arrays(legacy / "runs" / record.raw.file, raw)
    records.write_record(legacy, record)
    with pytest.raises(DataError) as caught:
        vbresults.build_tables(legacy)
    text = str(caught.value)
    assert len(text.splitlines()) == 1 and record.raw.file in text
    assert "1 search settings, the run record lists 2" in text
