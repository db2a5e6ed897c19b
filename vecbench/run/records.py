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

A record names the checksums of its arrays; a record whose arrays are missing or altered, an
empty, truncated or foreign record, or one written for another key is not complete and its unit
runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vecbench.core import atomic
from vecbench.core.cache import _alive, clean_temporaries
from vecbench.core.errors import DataError

#: Bump when the record layout changes: older records are reported and left out, never misread.
SCHEMA = 2
#: The keys of an experiment's current units, written by `run` beside runs/.
MANIFEST = "units.json"
STATUSES = ("ok", "error", "crash")
#: Fields every record has, with their JSON types.
REQUIRED = {"schema": int, "key": str, "status": str, "spec": dict, "experiment": str,
            "labels": dict, "spec_digest": str}
REQUIRED_OK = {"dataset": dict, "encode": dict, "build": dict, "settings": list, "raw": dict,
               "reference": dict}


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


def write_arrays(path: Path, arrays: dict) -> dict:
    """Save named arrays (npz, uncompressed: ids do not compress) atomically; name its digest."""
    import numpy as np

    _atomic(path, lambda handle: np.savez(handle, **arrays))
    return {"file": path.name, "bytes": path.stat().st_size, "blake2b": file_digest(path)}


#: The record's own content digest: an edited record (a changed number, a dropped field) is
#: not complete, so its unit runs again instead of being read wrong. A record without it is
#: not trusted either (removing it would otherwise hide any edit).
DIGEST_FIELD = "record_blake2b"


def record_digest(record: dict) -> str:
    body = {name: value for name, value in record.items() if name != DIGEST_FIELD}
    text = json.dumps(body, sort_keys=True, default=_json_default, allow_nan=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def write_record(results: str | Path, record: dict) -> Path:
    path = record_path(results, record["key"])
    record = {**record, DIGEST_FIELD: record_digest(record)}
    text = json.dumps(record, default=_json_default, allow_nan=True)
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


def store_unit(results: str | Path, outcome: "Outcome") -> Path:
    """Write a unit's arrays, its dataset's reference (once), then the record, in that order."""
    record = dict(outcome.record)
    if outcome.raw:
        record["raw"] = write_arrays(raw_path(results, record["key"]), outcome.raw)
    if outcome.reference is not None:
        # named by content (data, judgments, k, depth); reused only when it verifies and is
        # bound to this data: an altered, emptied or swapped file is written again
        name = outcome.reference_name
        path = reference_path(results, name)
        binding = str(outcome.reference.get("binding", ""))
        problem = reference_problem(path, binding)
        if problem is not None:
            if path.exists() or path.is_symlink():
                from vecbench.core.cache import warn

                warn(f"{path}: reference answers {problem}; writing them again")
            write_arrays(path, outcome.reference)
        record["reference"] = {"file": name, "blake2b": file_digest(path), "binding": binding}
    return write_record(results, record)


@dataclass
class Outcome:
    """What a unit returns to whoever writes it: the record and its arrays."""

    record: dict
    raw: dict | None = None
    reference: dict | None = None     # arrays of the dataset's reference
    reference_name: str = ""

    @property
    def status(self) -> str:
        return self.record["status"]


# ---------------------------------------------------------------------------------------------
# Claims: one process computes a unit at a time, whatever number of `run`s share the folder

def claim_path(results: str | Path, key: str) -> Path:
    return runs_dir(results) / f"{key}.claim"


def claim(results: str | Path, key: str) -> bool:
    """Take the unit's claim (an O_EXCL file naming host and pid); False when another live
    process holds it. A claim whose process on this host is gone is stale and taken over."""
    import socket

    path = claim_path(results, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = f"{socket.gethostname()} {os.getpid()}".encode()
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if claim_held(path):
                return False
            path.unlink(missing_ok=True)   # stale: its process is gone
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(mine)
        return True
    return False


def claim_held(path: Path) -> bool:
    """True while the claim's process is alive (or on another host, where it cannot be told)."""
    import socket

    import time

    try:
        host, pid = path.read_text().split()
        pid = int(pid)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        try:  # being written right now (created, not yet filled), or garbage left behind
            return time.time() - path.stat().st_mtime < 5
        except OSError:
            return False
    return host != socket.gethostname() or _alive(pid)


def release(results: str | Path, key: str) -> None:
    try:
        path = claim_path(results, key)
        if path.read_bytes().split()[-1] == str(os.getpid()).encode():
            path.unlink()
    except (OSError, IndexError):
        pass


# ---------------------------------------------------------------------------------------------
# Reading

def read_record(path: Path) -> dict:
    """A record, or DataError naming the file when it is not one."""
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a vecbench run record ({type(exc).__name__}); "
                        "expected JSON written by `vecbench run`") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise DataError(f"{path}: cannot be read as a run record ({exc.strerror})") from None
    problem = schema_problem(data)
    if problem is None and DIGEST_FIELD not in data:  # a dropped digest hides an edit
        problem = f"no {DIGEST_FIELD} checksum: edited, or written by an older vecbench"
    elif problem is None and data[DIGEST_FIELD] != record_digest(data):
        problem = "its content does not match its digest: edited or corrupt"
    if problem:
        raise DataError(f"{path}: not a complete vecbench run record ({problem})")
    return data


def schema_problem(data: Any) -> str | None:
    """Why ``data`` is not a valid record, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if data.get("schema") != SCHEMA:
        return f"schema {data.get('schema')!r}, expected {SCHEMA}"
    for name, kind in REQUIRED.items():
        if not isinstance(data.get(name), kind):
            return f"field {name!r} missing or not a {kind.__name__}"
    if data["status"] not in STATUSES:
        return f"status {data['status']!r}, expected one of {', '.join(STATUSES)}"
    if data["status"] == "ok":
        for name, kind in REQUIRED_OK.items():
            if not isinstance(data.get(name), kind):
                return f"field {name!r} missing or not a {kind.__name__}"
    return None


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
    if record["key"] != key or record["status"] != "ok":
        return False
    return _arrays_match(results, record)


def _arrays_match(results: str | Path, record: dict) -> bool:
    raw = record["raw"]
    raw_file = runs_dir(results) / str(raw.get("file", ""))
    reference = reference_path(results, str(record["reference"].get("file", "")))
    try:
        return (raw_file.is_file() and raw_file.stat().st_size == raw.get("bytes")
                and file_digest(raw_file) == raw.get("blake2b")
                and reference.is_file()
                and file_digest(reference) == record["reference"].get("blake2b"))
    except OSError:
        return False


def iter_records(results: str | Path) -> Iterator[tuple[Path, dict | None, str | None]]:
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


def load_raw(results: str | Path, record: dict) -> dict:
    """The record's raw arrays, checked against the digest the record names."""
    import numpy as np

    path = runs_dir(results) / record["raw"]["file"]
    _verify(path, record["raw"].get("blake2b"), "raw results")
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable raw results ({exc})") from None


def _verify(path: Path, digest: str | None, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: {what} missing; expected the file the run record names "
                        "(rerun the unit with `vecbench run`)")
    if file_digest(path) != digest:
        raise DataError(f"{path}: {what} do not match the checksum in the run record "
                        "(altered or truncated); rerun the unit with `vecbench run`")


@dataclass
class Reference:
    """A dataset's exact answers, shared by every unit over it (see module docstring)."""

    truth_ids: Any                 # (nq, depth) int64
    truth_distances: Any           # (nq, k) float64, exact original-space distances
    query_lid: Any                 # (nq,)
    judgments: Any = None          # relevance.Judgments or None
    n_queries: int = 0
    n_base: int = 0


def reference_arrays(truth_ids, truth_distances, query_lid, judgments, n_base: int,
                     fingerprint: str = "") -> dict:
    """The arrays of a reference file (judgments as their sparse parts), bound to the data's
    full fingerprint and its judgments (``binding``) and sealed with a checksum of them all."""
    import numpy as np

    arrays = {"truth_ids": truth_ids, "truth_distances": truth_distances,
              "query_lid": query_lid, "n_base": np.int64(n_base)}
    if judgments is not None:
        gains = judgments.gains.tocsr()
        arrays.update({"judged_data": gains.data, "judged_indices": gains.indices,
                       "judged_indptr": gains.indptr, "judged_ideal": judgments.ideal,
                       "judged_n_relevant": judgments.n_relevant,
                       "judged_self_rows": judgments.self_rows})
    judged = arrays_digest({n: a for n, a in arrays.items() if n.startswith("judged_")})
    arrays["binding"] = np.array(f"{fingerprint}-{judged}")
    arrays[REFERENCE_CHECKSUM] = np.array(arrays_digest(arrays))
    return arrays


#: The member of a reference file holding the checksum of all the others.
REFERENCE_CHECKSUM = "checksum"


def arrays_digest(arrays: dict) -> str:
    """Content digest of named arrays (names, dtypes, shapes, values), independent of how the
    file holding them was laid out."""
    import numpy as np

    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        if name == REFERENCE_CHECKSUM:
            continue
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _reference_file(path: Path) -> tuple[dict | None, str | None]:
    """(arrays, None) of a reference file that verifies against its own checksum, else
    (None, why not)."""
    import numpy as np

    if path.is_symlink() or not path.is_file():
        return None, "are missing" if not path.exists() else "are not a regular file"
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except Exception as exc:  # numpy and zipfile raise many kinds for a damaged file
        text = (str(exc).splitlines() or [""])[0]
        return None, f"are unreadable ({type(exc).__name__}{': ' + text if text else ''})"
    if REFERENCE_CHECKSUM not in arrays:
        return None, "carry no checksum (not written by this vecbench, or edited)"
    if str(arrays[REFERENCE_CHECKSUM]) != arrays_digest(arrays):
        return None, "do not match their checksum (altered)"
    return arrays, None


def reference_problem(path: Path, binding: str | None) -> str | None:
    """Why the reference file at ``path`` cannot serve data bound to ``binding``, or None."""
    arrays, problem = _reference_file(path)
    if problem is None and binding is not None and str(arrays.get("binding")) != binding:
        problem = "were written for other data or judgments (binding does not match)"
    return problem


def load_reference(results: str | Path, record: dict) -> Reference:
    path = reference_path(results, record["reference"]["file"])
    _verify(path, record["reference"].get("blake2b"), "reference answers")
    arrays, problem = _reference_file(path)
    binding = record["reference"].get("binding")
    if problem is None and str(arrays.get("binding")) != binding:
        problem = "were written for other data or judgments than the run record's"
    if problem is not None:
        raise DataError(f"{path}: reference answers {problem}; rerun the unit with "
                        "`vecbench run`")
    try:
        return reference_from_arrays(arrays)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: incomplete reference answers ({exc}); rerun the unit with "
                        "`vecbench run`") from None


def reference_from_arrays(arrays: dict) -> Reference:
    from vecbench.compute.relevance import Judgments

    judgments = None
    if "judged_data" in arrays:
        judgments = Judgments.from_arrays(
            arrays["judged_data"], arrays["judged_indices"], arrays["judged_indptr"],
            arrays["judged_ideal"], arrays["judged_n_relevant"], arrays["judged_self_rows"],
            int(arrays["n_base"]))
    return Reference(arrays["truth_ids"], arrays["truth_distances"], arrays["query_lid"],
                     judgments, int(arrays["truth_ids"].shape[0]), int(arrays["n_base"]))


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

    records: list[dict]
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
        elif current is not None and record["key"] not in current:
            selection.other_grids += 1
        elif record["key"] != path.stem:
            selection.unreadable.append(f"{path}: written for key {record['key']}")
        else:
            selection.records.append(record)
    return selection
