"""Run records on disk: one JSON per build unit, its raw arrays beside it, written atomically.

    runs/<key>.json        the record: spec, status, what each stage reported, environment;
                           written last, so its existence *and validity* is the resume check
    runs/<key>.npz         raw results: ids (and distances) of every search setting, every timed
                           pass and single-query latency, exact kNN of the indexed vectors
    reference/<name>-<key>-k<k>-d<depth>.npz
                           per dataset (keyed by its vectors' fingerprint and its judgments),
                           shared by its units: exact kNN ids, exact distances, query LID and
                           judgments, from which collect computes every metric without the
                           data; sealed with a checksum and bound to the full fingerprint

What each file holds is :mod:`vecbench.run.schema` (UnitRecord, RawResults, Reference); this module
decides where they go and in what order. A record names the checksums of its arrays; a record whose arrays are missing or altered, an
empty, truncated or foreign record, or one written for another key is not complete and its unit
runs again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from vecbench.core import atomic
from vecbench.core.cache import clean_temporaries
from vecbench.core.errors import DataError
from vecbench.run.schema import (SCHEMA_VERSION, FileRef, RawResults, Reference,
                                 SchemaError, UnitRecord, load_arrays)
from vecbench.core.cache import warn
# claims live in run/claims.py; callers name them through records, as before
from vecbench.run.claims import claim, claim_path, held as claim_held, release  # noqa: F401

#: The record layout written (older readable ones are read; others reported, never misread).
SCHEMA = SCHEMA_VERSION
#: The keys of an experiment's current units, written by `run` beside runs/.
MANIFEST = "units.json"


def prepare_results(results: str | Path) -> Path:
    """The results folder, made if needed, with temporaries of interrupted writes removed; a
    path that is a file or cannot be made is a one-line DataError."""
    path = Path(results)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: exists and is not a folder; expected --results to name a "
                        "results folder (new or from an earlier run)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot make the results folder ({exc.strerror or exc}); "
                        "expected a writable folder") from None
    for folder in (path, runs_dir(path), path / "reference"):
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder}: exists and is not a folder; expected the results "
                            "folder's own layout (runs/, reference/)")
        clean_temporaries(folder)
    return path


def runs_dir(results: str | Path) -> Path:
    return Path(results) / "runs"


def record_path(results: str | Path, key: str) -> Path:
    return runs_dir(results) / f"{key}.json"


def raw_path(results: str | Path, key: str) -> Path:
    return runs_dir(results) / f"{key}.npz"


def reference_path(results: str | Path, name: str) -> Path:
    return Path(results) / "reference" / name


# ---------------------------------------------------------------------------------------------
# Writing

def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():   # a folder where a file belongs: replace it
        import shutil

        shutil.rmtree(path)
    atomic.write_with(path, write, durable=True)


def write_arrays(path: Path, content: "RawResults | Reference") -> FileRef:
    """Save a schema object's npz atomically; name its digest."""
    _atomic(path, content.to_npz)
    return FileRef(path.name, file_digest(path), bytes=path.stat().st_size)


#: The record's own content digest: an edited record (a changed number, a dropped field) is
#: not complete, so its unit runs again instead of being read wrong. A record without it is
#: not trusted either (removing it would otherwise hide any edit).
DIGEST_FIELD = "record_blake2b"


def record_digest(record: dict) -> str:
    body = {name: value for name, value in record.items() if name != DIGEST_FIELD}
    text = json.dumps(body, sort_keys=True, default=_json_default, allow_nan=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def write_record(results: str | Path, record: UnitRecord) -> Path:
    path = record_path(results, record.key)
    data = record.to_json()
    data[DIGEST_FIELD] = record_digest(data)
    text = json.dumps(data, default=_json_default, allow_nan=True)
    _atomic(path, lambda handle: handle.write(text.encode()))
    return path


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


#: Reference files this process verified or wrote: path -> (its stat, binding, digest). The
#: units of a run share one file: it is read and checked once, and again only if it changed.
_REFERENCES_SEEN: dict[Path, tuple] = {}


def _stat_of(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def store_unit(results: str | Path, outcome: "Outcome") -> Path:
    """Write a unit's arrays, its dataset's reference (once), then the record, in that order."""
    import dataclasses

    record = dataclasses.replace(outcome.record)
    if outcome.raw is not None:
        record.raw = write_arrays(raw_path(results, record.key), outcome.raw)
    if outcome.reference is not None:
        # named by content (data, judgments, k, depth); reused only when it verifies and is
        # bound to this data: an altered, emptied or swapped file is written again
        name = outcome.reference_name
        path = reference_path(results, name)
        binding = outcome.reference.binding
        seen = _REFERENCES_SEEN.get(path)
        if seen is None or seen[:2] != (_stat_of(path), binding):
            problem = reference_problem(path, binding)
            if problem is not None:
                if path.exists() or path.is_symlink():
                    warn(f"{path}: reference answers {problem}; writing them again")
                write_arrays(path, outcome.reference)
            seen = _REFERENCES_SEEN[path] = (_stat_of(path), binding, file_digest(path))
        record.reference = FileRef(name, seen[2], binding=binding)
    return write_record(results, record)


@dataclass
class Outcome:
    """What a unit returns to whoever writes it: the record and its arrays."""

    record: UnitRecord
    raw: RawResults | None = None
    reference: Reference | None = None     # the dataset's exact answers
    reference_name: str = ""

    @property
    def status(self) -> str:
        return self.record.status


# ---------------------------------------------------------------------------------------------
# Reading

def read_record(path: Path) -> UnitRecord:
    """A record, or DataError naming the file when it is not one."""
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a vecbench run record ({type(exc).__name__}); "
                        "expected JSON written by `vecbench run`") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise DataError(f"{path}: cannot be read as a run record ({exc.strerror})") from None
    record, problem = None, None
    try:
        record = UnitRecord.from_json(data)
    except SchemaError as exc:
        problem = str(exc)
    if problem is None and DIGEST_FIELD not in data:  # a dropped digest hides an edit
        problem = f"no {DIGEST_FIELD} checksum: edited, or written by an older vecbench"
    elif problem is None and data[DIGEST_FIELD] != record_digest(data):
        problem = "its content does not match its digest: edited or corrupt"
    if problem:
        raise DataError(f"{path}: not a complete vecbench run record ({problem})")
    return record


def is_done(results: str | Path, key: str) -> bool:
    """True when the unit's record is there, valid, for this key, ``ok``, and its arrays check.

    A failed unit (``error``, ``crash``) is not done: it runs again (its cause may be gone).
    """
    path = record_path(results, key)
    if not path.is_file():
        return False
    try:
        record = read_record(path)
    except DataError:
        return False
    if record.key != key or record.status != "ok":
        return False
    return _arrays_match(results, record)


def _arrays_match(results: str | Path, record: UnitRecord) -> bool:
    raw = record.raw
    raw_file = runs_dir(results) / raw.file
    reference = reference_path(results, record.reference.file)
    try:
        return (raw_file.is_file() and raw_file.stat().st_size == raw.bytes
                and file_digest(raw_file) == raw.blake2b
                and reference.is_file()
                and file_digest(reference) == record.reference.blake2b)
    except OSError:
        return False


def iter_records(results: str | Path) -> Iterator[tuple[Path, UnitRecord | None, str | None]]:
    """(path, record or None, why not) for every runs/*.json, in name order."""
    folder = runs_dir(results)
    if not folder.is_dir():
        raise DataError(f"{results}: no run records here (expected a folder with runs/*.json; "
                        "run `vecbench run` first)")
    for path in sorted(folder.glob("*.json")):
        try:
            yield path, read_record(path), None
        except DataError as exc:
            yield path, None, str(exc)


def load_raw(results: str | Path, record: UnitRecord) -> RawResults:
    """The record's raw results, checked against the digest the record names and against its
    settings (one raw search per setting)."""
    path = runs_dir(results) / record.raw.file
    _verify(path, record.raw.blake2b, "raw results")
    try:
        raw = RawResults.from_npz(path)
    except SchemaError as exc:
        raise DataError(f"{path}: not a unit's raw results ({exc}); rerun the unit with "
                        "`vecbench run`") from None
    if len(raw.searches) != len(record.settings):
        raise DataError(f"{path}: raw results of {len(raw.searches)} search settings, the run "
                        f"record lists {len(record.settings)}; rerun the unit with "
                        "`vecbench run`")
    return raw


def _verify(path: Path, digest: str | None, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: {what} missing; expected the file the run record names "
                        "(rerun the unit with `vecbench run`)")
    if file_digest(path) != digest:
        raise DataError(f"{path}: {what} do not match the checksum in the run record "
                        "(altered or truncated); rerun the unit with `vecbench run`")


def _reference_file(path: Path) -> tuple[Reference | None, str | None]:
    """(reference, None) of a file that verifies against its own checksum, else (None, why
    not)."""
    if path.is_symlink() or not path.is_file():
        return None, "are missing" if not path.exists() else "are not a regular file"
    try:
        return Reference.from_arrays(load_arrays(path)), None
    except SchemaError as exc:
        text = str(exc)
        return None, text if text.startswith(("carry", "do not", "are")) else f"are {text}"


def reference_problem(path: Path, binding: str | None) -> str | None:
    """Why the reference file at ``path`` cannot serve data bound to ``binding``, or None."""
    reference, problem = _reference_file(path)
    if problem is None and binding is not None and reference.binding != binding:
        problem = "were written for other data or judgments (binding does not match)"
    return problem


def load_reference(results: str | Path, record: UnitRecord) -> Reference:
    path = reference_path(results, record.reference.file)
    _verify(path, record.reference.blake2b, "reference answers")
    reference, problem = _reference_file(path)
    if problem is None and reference.binding != record.reference.binding:
        problem = "were written for other data or judgments than the run record's"
    if problem is not None:
        raise DataError(f"{path}: reference answers {problem}; rerun the unit with "
                        "`vecbench run`")
    return reference


# ---------------------------------------------------------------------------------------------
# Which records make up an experiment

def write_manifest(results: str | Path, keys: list[str], data_hashing: str = "") -> None:
    """The keys of the experiment's current units and how their data was matched to them
    (``full``: every file hashed; ``size+mtime``: some trusted by their size and mtime); written
    only when they changed."""
    path = Path(results) / MANIFEST
    content: dict = {"keys": sorted(keys)}
    if data_hashing:
        content["data_hashing"] = data_hashing
    text = json.dumps(content)
    try:
        if path.read_bytes() == text.encode():
            return
    except OSError:
        pass
    _atomic(path, lambda handle: handle.write(text.encode()))


def read_manifest(results: str | Path) -> set[str] | None:
    manifest = _manifest(results)
    return None if manifest is None else set(manifest["keys"])


def manifest_hashing(results: str | Path) -> str | None:
    """How the last `run` matched the current units' data files (see :func:`write_manifest`)."""
    manifest = _manifest(results)
    return None if manifest is None else manifest.get("data_hashing")


def _manifest(results: str | Path) -> dict | None:
    path = Path(results) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        keys = manifest["keys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or \
                not isinstance(manifest.get("data_hashing", ""), str):
            raise TypeError
        return manifest
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise DataError(f"{path}: not a vecbench unit list (expected JSON {{\"keys\": [...]}} "
                        "written by `vecbench run`); rerun `vecbench run` to rewrite it") \
            from None


@dataclass
class Selection:
    """The records of the current units, and what was left out (each reported in one line)."""

    records: list[UnitRecord]
    other_grids: int = 0
    unreadable: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        out = []
        if self.other_grids:
            out.append(f"left out {self.other_grids} records of other grids or data in this "
                       "folder (collect --all to include them)")
        if self.unreadable:
            out.append(f"skipped {len(self.unreadable)} unreadable or incomplete records, e.g. "
                       f"{self.unreadable[0]}")
        return out


def select(results: str | Path, include_all: bool = False) -> Selection:
    current = None if include_all else read_manifest(results)
    selection = Selection([])
    for path, record, why in iter_records(results):
        if record is None:
            selection.unreadable.append(why or str(path))
        elif current is not None and record.key not in current:
            selection.other_grids += 1
        elif record.key != path.stem:
            selection.unreadable.append(f"{path}: written for key {record.key}")
        else:
            selection.records.append(record)
    return selection
