"""The typed run schema: what a unit is, what it returns, and how that is laid out on disk.

    UnitSpec    what identifies a unit: experiment, spec, its digest, labels, key
    RawSearch   one search setting's raw results: returned ids per depth, distances, every
                timed pass, single-query latencies, the clients' wall time, the exact distances
                of the returned ids
    RawResults  a unit's raw file: its RawSearch list and the exact kNN of the indexed vectors
    UnitRecord  the run record (JSON): status, failure, what each stage reported, environment
    Reference   a dataset's exact answers: kNN ids and distances, query LID, judgments, and the
                binding and checksum that tie the file to its data

This is the one module that knows the npz member names and the record's JSON fields; everything
else reads and builds these objects. A file that is not what it claims raises
:class:`SchemaError` with a one-line reason (the caller adds the file's name).

Versions: 3 drops each setting's ``prefix`` from the record (a setting's place in ``settings``
is its place in the raw file) and puts ``schema_version`` in the raw file. Version 2 files are
read as they are: their layout is otherwise the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 3
#: Record versions read (2: before this module; same arrays, settings carry a prefix).
READABLE = (2, 3)
STATUSES = ("ok", "error", "crash")


class SchemaError(ValueError):
    """A file's content is not what the schema says: one line, without the file's name."""


# ---------------------------------------------------------------------------------------------
# JSON sections: dataclasses whose fields are the JSON object's keys

def _kind(kind, default=dataclasses.MISSING, section=None):
    """A field of JSON type ``kind`` (checked on read); ``section``: a dataclass (or [one])."""
    if default is dataclasses.MISSING:
        return field(metadata={"kind": kind, "section": section})
    factory = default if callable(default) else None
    if factory:
        return field(default_factory=factory, metadata={"kind": kind, "section": section})
    return field(default=default, metadata={"kind": kind, "section": section})


NUMBER = (int, float)


def _to_json(obj) -> dict:
    """The object's JSON fields (None left out), its sections as objects, then ``extra``."""
    out: dict = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name == "extra" or value is None:
            continue
        if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            value = [_to_json(item) for item in value]
        elif dataclasses.is_dataclass(value):
            value = _to_json(value)
        out[f.name] = value
    out.update(getattr(obj, "extra", {}) or {})
    return out


def _from_json(cls, data: Any, where: str):
    """``cls`` from a JSON object, each field's type checked; unknown keys go to ``extra``."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where or 'record'}: expected a JSON object, got "
                          f"{type(data).__name__}")
    values, names = {}, set()
    for f in dataclasses.fields(cls):
        names.add(f.name)
        if f.name == "extra":
            continue
        name = f"{where}.{f.name}" if where else f.name
        if f.name not in data or data[f.name] is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SchemaError(f"field {name!r} missing")
            continue
        values[f.name] = _field_value(f, data[f.name], name)
    if "extra" in names:
        values["extra"] = {k: v for k, v in data.items() if k not in names}
    return cls(**values)


def _field_value(f, value, name: str):
    kind, section = f.metadata.get("kind"), f.metadata.get("section")
    if kind is not None and not isinstance(value, kind) or isinstance(value, bool) and \
            kind in (NUMBER, int, float):
        kinds = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise SchemaError(f"field {name!r} is not {'an' if kinds[0] == 'i' else 'a'} {kinds}")
    if isinstance(section, list):
        return [_from_json(section[0], item, f"{name}[{i}]") for i, item in enumerate(value)]
    if section is not None:
        return _from_json(section, value, name)
    return value


@dataclass
class UnitSpec:
    """What identifies a unit: its experiment, canonical spec and its digest, its row labels,
    and the key that names its files (the spec, the data, threads and stage versions)."""

    experiment: str = _kind(str)
    spec: dict = _kind(dict)
    spec_digest: str = _kind(str)
    labels: dict = _kind(dict)
    key: str = _kind(str, "")


@dataclass
class DatasetInfo:
    name: str = _kind(str)
    n_base: int | None = _kind(int, None)
    n_queries: int | None = _kind(int, None)
    dim: int | None = _kind(int, None)
    metric: str | None = _kind(str, None)
    fingerprint: str | None = _kind(str, None)
    judged: bool | None = _kind(bool, None)


@dataclass
class EncodeInfo:
    quantization: str = _kind(str)              # none | native | simulated
    bytes_per_vector: float = _kind(NUMBER)
    model_bytes: int = _kind(int, 0)            # the quantizer's per-dataset parameters
    #: what every fitted step keeps to encode a query (older records: None)
    pipeline_model_bytes: int | None = _kind(int, None)
    fit_s: float = _kind(NUMBER, 0.0)
    encode_s: float = _kind(NUMBER, 0.0)
    clipped_fraction: dict = _kind(dict, dict)
    fitted_here: bool = _kind(bool, False)
    dim: int | None = _kind(int, None)
    trustworthiness: float | None = _kind(NUMBER, None)


@dataclass
class BuildInfo:
    build_s: float = _kind(NUMBER)
    index_bytes: int = _kind(int)
    threads: int = _kind(int)
    deterministic: bool = _kind(bool)
    code_bytes_per_vector: float = _kind(NUMBER)
    graph_bytes_per_vector: float = _kind(NUMBER, 0.0)
    compresses: bool = _kind(bool, False)
    details: dict = _kind(dict, dict)


@dataclass
class SettingInfo:
    """One search setting as the record names it; its raw results are ``RawResults.searches``
    at the same place."""

    search: dict = _kind(dict, dict)
    rescore: dict = _kind(dict, dict)
    depths: list = _kind(list, list)
    rescore_bytes_per_vector: float | None = _kind(NUMBER, None)
    rescore_model_bytes: int | None = _kind(NUMBER, None)
    #: a runbook's search step: its number in the runbook (1-based), its place among the
    #: search steps (``RawResults.runbook`` arrays), the active points then
    step: dict | None = _kind(dict, None)


@dataclass
class FileRef:
    """A file the record names: its name and checksum (raw: its size; reference: binding)."""

    file: str = _kind(str)
    blake2b: str = _kind(str, "")
    bytes: int | None = _kind(int, None)
    binding: str | None = _kind(str, None)


@dataclass
class UnitRecord:
    """The run record of one unit: written last; status ``ok``, ``error`` (a user error: a
    one-line reason naming file and YAML path) or ``crash`` (its traceback). In JSON the
    unit's fields sit beside the others, as schema 2 had them."""

    unit: UnitSpec = _kind(UnitSpec)
    status: str = _kind(str)
    threads: int | None = _kind(int, None)
    host: str = _kind(str, "")
    worker: str = _kind(str, "")
    started: float | None = _kind(NUMBER, None)
    finished: float | None = _kind(NUMBER, None)
    peak_rss_bytes: int | None = _kind(int, None)
    # failed units
    reason: str | None = _kind(str, None)
    stage: str | None = _kind(str, None)           # the stage a failure happened in
    error_type: str | None = _kind(str, None)
    traceback: str | None = _kind(str, None)
    stderr_tail: list | None = _kind(list, None)   # a crashed worker's last output lines
    exit_code: int | None = _kind(int, None)
    # what each stage reported (ok; a failed unit may know its dataset's name)
    dataset: DatasetInfo | None = _kind(dict, None, DatasetInfo)
    contended: bool | None = _kind(bool, None)
    encode: EncodeInfo | None = _kind(dict, None, EncodeInfo)
    build: BuildInfo | None = _kind(dict, None, BuildInfo)
    search_threads: int | None = _kind(int, None)
    settings: list[SettingInfo] = _kind(list, list, [SettingInfo])
    guards: dict | None = _kind(dict, None)
    warnings: list[str] = _kind(list, list)
    library_output: list[str] = _kind(list, list)  # what native libraries printed (bounded)
    lost_workers: list | None = _kind(list, None)  # Dask workers lost while the unit was theirs
    environment: dict | None = _kind(dict, None)
    raw: FileRef | None = _kind(dict, None, FileRef)
    reference: FileRef | None = _kind(dict, None, FileRef)
    schema: int = _kind(int, SCHEMA_VERSION)
    #: fields of a newer writer, kept as they are
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.unit.key

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        body = _to_json(self)
        del body["unit"], body["schema"]
        if not self.lost_workers:
            body.pop("lost_workers", None)
        if not self.ok:  # nothing was searched: only an ok record lists settings, warnings
            for name in ("settings", "warnings", "library_output"):
                if not body.get(name):
                    body.pop(name, None)
        return {"schema": self.schema, **_to_json(self.unit), **body}

    @classmethod
    def from_json(cls, data: Any) -> "UnitRecord":
        if not isinstance(data, dict):
            raise SchemaError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("schema") not in READABLE:
            raise SchemaError(f"schema {data.get('schema')!r}, expected one of "
                              f"{', '.join(map(str, READABLE))}")
        if not isinstance(data.get("key"), str):
            raise SchemaError("field 'key' missing or not a str")
        if data.get("status") not in STATUSES:
            raise SchemaError(f"status {data.get('status')!r}, expected one of "
                              f"{', '.join(STATUSES)}")
        if data["status"] == "ok":
            for name in ("dataset", "encode", "build", "settings", "raw", "reference"):
                if data.get(name) is None:
                    raise SchemaError(f"field {name!r} missing")
        body = {k: v for k, v in data.items() if k not in _UNIT_FIELDS}
        if data["schema"] == 2:
            body["settings"] = _settings_v2(body.get("settings", []))
        body["unit"] = _from_json(UnitSpec, data, "")
        return _from_json(cls, body, "")


_UNIT_FIELDS = {f.name for f in dataclasses.fields(UnitSpec)}


def _settings_v2(settings: Any) -> Any:
    """Schema 2 settings named their arrays ``s{i}_``: always their own place, so the prefix
    says nothing the order does not; one that says otherwise is not a record we wrote."""
    if not isinstance(settings, list):
        return settings
    out = []
    for i, setting in enumerate(settings):
        if isinstance(setting, dict):
            if setting.get("prefix", f"s{i}_") != f"s{i}_":
                raise SchemaError(f"settings[{i}].prefix {setting.get('prefix')!r}, expected "
                                  f"'s{i}_'")
            setting = {k: v for k, v in setting.items() if k != "prefix"}
        out.append(setting)
    return out


# ---------------------------------------------------------------------------------------------
# Arrays: npz files

def load_arrays(path) -> dict:
    """Every member of an npz file; a damaged or foreign file is one SchemaError."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as stored:
            if not hasattr(stored, "files"):
                raise ValueError("a single array, not an npz archive")
            return {name: stored[name] for name in stored.files}
    except SchemaError:
        raise
    except Exception as exc:  # numpy and zipfile raise many kinds for a damaged file
        text = (str(exc).splitlines() or [""])[0]
        raise SchemaError(f"unreadable ({type(exc).__name__}{': ' + text if text else ''})") \
            from None


def save_arrays(handle, arrays: dict) -> None:
    """npz, uncompressed: ids do not compress."""
    import numpy as np

    np.savez(handle, **arrays)


class _Npz:
    """``to_npz`` / ``from_npz`` through a class's ``to_arrays`` / ``from_arrays``."""

    def to_npz(self, handle) -> None:
        save_arrays(handle, self.to_arrays())

    @classmethod
    def from_npz(cls, path):
        return cls.from_arrays(load_arrays(path))


def _member(arrays: dict, name: str):
    if name not in arrays:
        raise SchemaError(f"no {name!r} array")
    return arrays[name]


@dataclass
class RawSearch(_Npz):
    """One search setting's raw results, in dataset row ids."""

    ids: dict                             # depth -> (nq, depth) ids; k and judged depths
    batch_seconds: Any                    # every timed pass over the query batch (clients: none)
    latency_seconds: Any                  # single queries: the loop's, or every client's
    true_distances: Any = None            # original-space distances of ids at k
    distances: Any = None                 # as the index returned them, where it does
    client_wall_seconds: float | None = None  # `clients: N`: the wall time they ran

    def to_arrays(self, prefix: str = "") -> dict:
        import numpy as np

        arrays = {}
        if self.client_wall_seconds is not None:
            arrays[f"{prefix}client_wall_seconds"] = np.asarray([self.client_wall_seconds])
        depths = sorted(self.ids)
        for depth in depths[:1]:
            arrays[f"{prefix}ids@{depth}"] = self.ids[depth]
        if self.true_distances is not None:
            arrays[f"{prefix}true_distances"] = self.true_distances
        if self.distances is not None:
            arrays[f"{prefix}distances"] = self.distances
        for depth in depths[1:]:
            arrays[f"{prefix}ids@{depth}"] = self.ids[depth]
        arrays[f"{prefix}batch_seconds"] = np.asarray(self.batch_seconds)
        arrays[f"{prefix}latency_seconds"] = np.asarray(self.latency_seconds)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str = "") -> "RawSearch":
        ids = {}
        for name, array in arrays.items():
            match = re.fullmatch(re.escape(prefix) + r"ids@(\d+)", name)
            if match:
                ids[int(match.group(1))] = array
        if not ids:
            raise SchemaError(f"no {prefix}ids@<depth> array")
        wall = arrays.get(f"{prefix}client_wall_seconds")
        return cls(ids, _member(arrays, f"{prefix}batch_seconds"),
                   _member(arrays, f"{prefix}latency_seconds"),
                   arrays.get(f"{prefix}true_distances"), arrays.get(f"{prefix}distances"),
                   None if wall is None else float(wall.reshape(-1)[0]))


@dataclass
class RawResults(_Npz):
    """A unit's raw file: one RawSearch per setting (in the record's order), and the exact kNN
    of the vectors the index stored (None without a pipeline: the reference's are those)."""

    searches: list[RawSearch] = field(default_factory=list)
    index_truth: Any = None
    #: a runbook unit's steps (vecbench.run.streaming): per step ``op`` (its operation; the
    #: first insert, which builds the index, ``build``), ``seconds``, ``count``, ``active``, ``prepare_seconds`` (a rebuild
    #: before a search), ``truth_seconds``; per search step ``truth_ids`` / ``truth_distances``
    #: (exact kNN tags of the active set, at the unit's k); per probe ``probe_step``,
    #: ``probe_tags``, ``probe_ids``. Stored as ``runbook_<name>``.
    runbook: dict | None = None

    def to_arrays(self) -> dict:
        import numpy as np

        arrays = {"schema_version": np.int64(SCHEMA_VERSION)}
        if self.index_truth is not None:
            arrays["index_truth"] = self.index_truth
        for name, array in (self.runbook or {}).items():
            arrays[f"{RUNBOOK_PREFIX}{name}"] = array
        for i, search in enumerate(self.searches):
            arrays.update(search.to_arrays(_prefix(i)))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict) -> "RawResults":
        version = int(arrays.get("schema_version", 2))  # schema 2 files carry no version
        if version not in READABLE:
            raise SchemaError(f"raw results of schema {version}, expected one of "
                              f"{', '.join(map(str, READABLE))}")
        places = {int(m.group(1)) for m in map(re.compile(r"s(\d+)_").match, arrays) if m}
        if places != set(range(len(places))):
            raise SchemaError(f"search settings {sorted(places)}, expected 0 to "
                              f"{len(places) - 1} without gaps")
        runbook = {name[len(RUNBOOK_PREFIX):]: array for name, array in arrays.items()
                   if name.startswith(RUNBOOK_PREFIX)}
        return cls([RawSearch.from_arrays(arrays, _prefix(i)) for i in range(len(places))],
                   arrays.get("index_truth"), runbook or None)


RUNBOOK_PREFIX = "runbook_"


def _prefix(place: int) -> str:
    return f"s{place}_"


# ---------------------------------------------------------------------------------------------
# Reference answers

#: The member of a reference file holding the checksum of all the others.
CHECKSUM = "checksum"


def arrays_digest(arrays: dict) -> str:
    """Content digest of named arrays (names, dtypes, shapes, values), independent of how the
    file holding them was laid out."""
    import numpy as np

    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        if name == CHECKSUM:
            continue
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


@dataclass
class Reference(_Npz):
    """A dataset's exact answers, shared by every unit over it: bound to the data's full
    fingerprint and its judgments (``binding``), sealed with a checksum of every array."""

    truth_ids: Any                 # (nq, depth) exact kNN ids in the original space
    truth_distances: Any           # (nq, k) exact original-space distances
    query_lid: Any                 # (nq,) pointwise LID of the queries
    judgments: Any = None          # relevance.Judgments or None
    n_base: int = 0
    binding: str = ""
    checksum: str = ""

    @property
    def n_queries(self) -> int:
        return int(self.truth_ids.shape[0])

    @classmethod
    def computed(cls, truth_ids, truth_distances, query_lid, judgments, n_base: int,
                 fingerprint: str = "") -> "Reference":
        """A new reference: its binding from the data's fingerprint and judgments, sealed."""
        reference = cls(truth_ids, truth_distances, query_lid, judgments, int(n_base))
        judged = arrays_digest({n: a for n, a in reference._arrays().items()
                                if n.startswith("judged_")})
        reference.binding = f"{fingerprint}-{judged}"
        reference.checksum = arrays_digest(reference.to_arrays())
        return reference

    def _arrays(self) -> dict:
        import numpy as np

        arrays = {"truth_ids": self.truth_ids, "truth_distances": self.truth_distances,
                  "query_lid": self.query_lid, "n_base": np.int64(self.n_base)}
        if self.judgments is not None:
            gains = self.judgments.gains.tocsr()
            arrays.update({"judged_data": gains.data, "judged_indices": gains.indices,
                           "judged_indptr": gains.indptr, "judged_ideal": self.judgments.ideal,
                           "judged_n_relevant": self.judgments.n_relevant,
                           "judged_self_rows": self.judgments.self_rows})
        return arrays

    def to_arrays(self) -> dict:
        import numpy as np

        arrays = self._arrays()
        arrays["binding"] = np.array(self.binding)
        arrays[CHECKSUM] = np.array(self.checksum or arrays_digest(arrays))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Reference":
        """The reference in ``arrays`` once they verify against their own checksum."""
        if CHECKSUM not in arrays:
            raise SchemaError("carry no checksum (not written by this vecbench, or edited)")
        if str(arrays[CHECKSUM]) != arrays_digest(arrays):
            raise SchemaError("do not match their checksum (altered)")
        try:
            return cls._parse(arrays)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise SchemaError(f"are incomplete ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _parse(cls, arrays: dict) -> "Reference":
        judgments = None
        if "judged_data" in arrays:
            from vecbench.compute.relevance import Judgments

            judgments = Judgments.from_arrays(
                arrays["judged_data"], arrays["judged_indices"], arrays["judged_indptr"],
                arrays["judged_ideal"], arrays["judged_n_relevant"], arrays["judged_self_rows"],
                int(arrays["n_base"]))
        return cls(arrays["truth_ids"], arrays["truth_distances"], arrays["query_lid"],
                   judgments, int(arrays["n_base"]), str(arrays["binding"]),
                   str(arrays[CHECKSUM]))
