"""The schema's array types: a search setting's raw results, a unit's raw file, and a
dataset's reference answers (each ``to_npz``/``from_npz``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from vecbench.run.schema_npz import (SCHEMA_VERSION, VERSION_MEMBER, Npz, SchemaError, member,
                                     readable_version)


@dataclass
class RawSearch(Npz):
    """One search setting's raw results, in dataset row ids."""

    ids: dict                             # depth -> (nq, depth) ids; k and judged depths
    batch_seconds: Any                    # every timed pass over the query batch (clients: none)
    latency_seconds: Any                  # single queries: the loop's, or every client's
    true_distances: Any = None            # original-space distances of ids at k
    distances: Any = None                 # as the index returned them, where it does
    client_wall_seconds: float | None = None  # `clients: N`: the wall time they ran
    #: `arrival:` every query's times (vecbench.run.arrival.STORED_COLUMNS), seconds from start
    arrival: Any = None
    arrival_wall_seconds: float | None = None    # `arrival:` start to the last client's report

    def to_arrays(self, prefix: str = "") -> dict:
        import numpy as np

        arrays = {}
        if self.arrival is not None:
            arrays[f"{prefix}arrival"] = np.asarray(self.arrival, dtype=np.float64)
            arrays[f"{prefix}arrival_wall_seconds"] = np.asarray([self.arrival_wall_seconds])
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
        arrival_wall = arrays.get(f"{prefix}arrival_wall_seconds")
        arrival = arrays.get(f"{prefix}arrival")
        if arrival is not None and (arrival.ndim != 2 or arrival.shape[1] != 6):
            raise SchemaError(f"{prefix}arrival of shape {arrival.shape}, expected (n, 6)")
        return cls(ids, member(arrays, f"{prefix}batch_seconds"),
                   member(arrays, f"{prefix}latency_seconds"),
                   arrays.get(f"{prefix}true_distances"), arrays.get(f"{prefix}distances"),
                   None if wall is None else float(wall.reshape(-1)[0]), arrival,
                   None if arrival_wall is None else float(arrival_wall.reshape(-1)[0]))


#: The arrays of one filter's answers (prefixed ``f{place}_``): the filter itself in the form
#: every engine expresses (vecbench.compute.filters.RowFilter: attr, sub, whole, whole_lengths,
#: partial), so collect recomputes which ids pass it, and its exact answers.
FILTER_ARRAYS = ("attr", "sub", "whole", "whole_lengths", "partial", "truth_ids", "n_matching",
                 "kth")


@dataclass
class FilterAnswers:
    """A filter a unit searched with, and the exact answers under it: ``arrays`` holds
    :data:`FILTER_ARRAYS` (``truth_ids`` (nq, k) exact filtered kNN, -1 padded; ``n_matching``
    (nq,) rows each query may see; ``kth`` (nq,) exact distance of the last true neighbour)."""

    arrays: dict

    def to_arrays(self, prefix: str) -> dict:
        return {f"{prefix}{name}": self.arrays[name] for name in FILTER_ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str) -> "FilterAnswers":
        return cls({name: member(arrays, f"{prefix}{name}") for name in FILTER_ARRAYS})


@dataclass
class RawResults(Npz):
    """A unit's raw file: one RawSearch per setting (in the record's order), the exact kNN
    of the vectors the index stored (None without a pipeline: the reference's are those), and
    the filters searched with, each with its exact answers (``filters``; settings name theirs)."""

    searches: list[RawSearch] = field(default_factory=list)
    index_truth: Any = None
    filters: list[FilterAnswers] = field(default_factory=list)
    #: a runbook unit's steps (vecbench.run.streaming): per step ``op`` (its operation; the
    #: first insert, which builds the index, ``build``), ``seconds``, ``count``, ``active``,
    #: ``prepare_seconds`` (a rebuild before a search), ``truth_seconds``; per search step
    #: ``truth_ids`` / ``truth_distances`` (exact kNN tags of the active set, at the unit's k);
    #: per probe ``probe_step``, ``probe_tags``, ``probe_ids``. Stored as ``runbook_<name>``.
    runbook: dict | None = None

    def to_arrays(self) -> dict:
        import numpy as np

        arrays = {VERSION_MEMBER: np.int64(SCHEMA_VERSION)}
        if self.index_truth is not None:
            arrays["index_truth"] = self.index_truth
        for name, array in (self.runbook or {}).items():
            arrays[f"{RUNBOOK_PREFIX}{name}"] = array
        for i, search in enumerate(self.searches):
            arrays.update(search.to_arrays(_prefix(i)))
        for i, answers in enumerate(self.filters):
            arrays.update(answers.to_arrays(f"f{i}_"))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict) -> "RawResults":
        readable_version(arrays, "raw results")
        places = {int(m.group(1)) for m in map(re.compile(r"s(\d+)_").match, arrays) if m}
        if places != set(range(len(places))):
            raise SchemaError(f"search settings {sorted(places)}, expected 0 to "
                              f"{len(places) - 1} without gaps")
        filters = {int(m.group(1)) for m in map(re.compile(r"f(\d+)_").match, arrays) if m}
        if filters != set(range(len(filters))):
            raise SchemaError(f"filters {sorted(filters)}, expected 0 to {len(filters) - 1} "
                              "without gaps")
        runbook = {name[len(RUNBOOK_PREFIX):]: array for name, array in arrays.items()
                   if name.startswith(RUNBOOK_PREFIX)}
        return cls([RawSearch.from_arrays(arrays, _prefix(i)) for i in range(len(places))],
                   arrays.get("index_truth"),
                   [FilterAnswers.from_arrays(arrays, f"f{i}_") for i in range(len(filters))],
                   runbook or None)


RUNBOOK_PREFIX = "runbook_"


def _prefix(place: int) -> str:
    return f"s{place}_"


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
class Reference(Npz):
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
