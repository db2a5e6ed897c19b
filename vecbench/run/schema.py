"""The typed run schema: what a unit is, what it returns, and how that is laid out on disk.

    UnitSpec    what identifies a unit: experiment, spec, its digest, labels, key
    RawSearch   one search setting's raw results: returned ids per depth, distances, every
                timed pass, single-query latencies, the clients' wall time, the exact distances
                of the returned ids
    RawResults  a unit's raw file: its RawSearch list, the exact kNN of the indexed vectors,
                and the filters searched with and their exact answers (FilterAnswers)
    UnitRecord  the run record (JSON): status, failure, what each stage reported, environment
    Reference   a dataset's exact answers: kNN ids and distances, query LID, judgments, and the
                binding and checksum that tie the file to its data

Each has ``to_npz``/``from_npz`` and a schema version (UnitSpec and UnitRecord keep their JSON as
one npz member; a record itself is written as JSON). The JSON types live in
:mod:`vecbench.run.schema_records`, the array types in :mod:`vecbench.run.schema_arrays`, the
version and npz helpers in :mod:`vecbench.run.schema_npz`; callers import them from here. These
are the modules that know the npz member names and the record's JSON fields; everything else
reads and builds these objects. A file that is not what it claims raises :class:`SchemaError`
with a one-line reason (the caller adds the file's name).

Versions: 3 drops each setting's ``prefix`` from the record (a setting's place in ``settings``
is its place in the raw file) and puts ``schema_version`` in the raw file. Version 2 files are
read as they are: their layout is otherwise the same.
"""

from vecbench.run.schema_arrays import (CHECKSUM, FilterAnswers, RawResults, RawSearch,
                                        Reference, arrays_digest)
from vecbench.run.schema_npz import (READABLE, SCHEMA_VERSION, SchemaError, load_arrays,
                                     save_arrays)
from vecbench.run.schema_records import (STATUSES, BuildInfo, DatasetInfo, EncodeInfo, FileRef,
                                         SettingInfo, UnitRecord, UnitSpec)

__all__ = ["CHECKSUM", "READABLE", "SCHEMA_VERSION", "STATUSES", "BuildInfo", "DatasetInfo",
           "EncodeInfo", "FileRef", "FilterAnswers", "RawResults", "RawSearch", "Reference",
           "SchemaError", "SettingInfo", "UnitRecord", "UnitSpec", "arrays_digest", "load_arrays",
           "save_arrays"]
