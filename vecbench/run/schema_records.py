"""The schema's JSON types: what identifies a unit (:class:`UnitSpec`) and its run record
(:class:`UnitRecord`), with the sections each stage reports; each also ``to_npz``/``from_npz``
(its JSON as one member, beside the schema version)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from vecbench.run.schema_npz import (READABLE, SCHEMA_VERSION, VERSION_MEMBER, Npz, SchemaError,
                                     member, readable_version)

STATUSES = ("ok", "error", "crash")


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


def _json_arrays(name: str, data: dict, version: int = SCHEMA_VERSION) -> dict:
    """A JSON object as an npz member, beside the schema version."""
    import numpy as np

    return {VERSION_MEMBER: np.int64(version), name: np.array(json.dumps(data, sort_keys=True))}


def _json_member(arrays: dict, name: str, what: str) -> Any:
    readable_version(arrays, what)
    text = str(member(arrays, name))
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"{what}: member {name!r} is not JSON ({exc})") from None


@dataclass
class UnitSpec(Npz):
    """What identifies a unit: its experiment, canonical spec and its digest, its row labels,
    and the key that names its files (the spec, the data, threads and stage versions)."""

    experiment: str = _kind(str)
    spec: dict = _kind(dict)
    spec_digest: str = _kind(str)
    labels: dict = _kind(dict)
    key: str = _kind(str, "")

    def to_arrays(self) -> dict:
        return _json_arrays("unit_spec", _to_json(self))

    @classmethod
    def from_arrays(cls, arrays: dict) -> "UnitSpec":
        return _from_json(cls, _json_member(arrays, "unit_spec", "unit spec"), "")


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
    #: a filtered search: {"label", "kind", "params", "answers": place in RawResults.filters,
    #: "truth_s"}; None: unfiltered
    filter: dict | None = _kind(dict, None)
    #: a runbook's search step: its number in the runbook (1-based), its place among the
    #: search steps (``RawResults.runbook`` arrays), the active points then
    step: dict | None = _kind(dict, None)
    #: the machine while this setting was timed (vecbench.run.contention's figures)
    contention: dict | None = _kind(dict, None)
    #: an arrival load's outcome: arrivals, answered, dropped (metrics come from the raw times)
    load: dict | None = _kind(dict, None)


@dataclass
class FileRef:
    """A file the record names: its name and checksum (raw: its size; reference: binding)."""

    file: str = _kind(str)
    blake2b: str = _kind(str, "")
    bytes: int | None = _kind(int, None)
    binding: str | None = _kind(str, None)


@dataclass
class UnitRecord(Npz):
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
    #: the machine before the unit and during its searches (vecbench.run.contention)
    contention: dict | None = _kind(dict, None)
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

    def to_arrays(self) -> dict:
        return _json_arrays("record", self.to_json(), self.schema)

    @classmethod
    def from_arrays(cls, arrays: dict) -> "UnitRecord":
        return cls.from_json(_json_member(arrays, "record", "record"))


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


