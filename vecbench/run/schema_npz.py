"""The run schema's version, its error, and npz files: the layer every schema type is stored
through (:mod:`vecbench.run.schema` names the types)."""

from __future__ import annotations

SCHEMA_VERSION = 3
#: Versions read (2: before the typed schema; same arrays, settings carry a prefix).
READABLE = (2, 3)
#: The member of an npz file holding its schema version (schema 2 files carry none).
VERSION_MEMBER = "schema_version"


class SchemaError(ValueError):
    """A file's content is not what the schema says: one line, without the file's name."""


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


class Npz:
    """``to_npz`` / ``from_npz`` through a class's ``to_arrays`` / ``from_arrays``."""

    def to_npz(self, handle) -> None:
        save_arrays(handle, self.to_arrays())

    @classmethod
    def from_npz(cls, path):
        return cls.from_arrays(load_arrays(path))


def readable_version(arrays: dict, what: str) -> int:
    """The schema version an npz file says it has (2 when it says none), if it is read."""
    version = int(arrays.get(VERSION_MEMBER, 2))
    if version not in READABLE:
        raise SchemaError(f"{what} of schema {version}, expected one of "
                          f"{', '.join(map(str, READABLE))}")
    return version


def member(arrays: dict, name: str):
    if name not in arrays:
        raise SchemaError(f"no {name!r} array")
    return arrays[name]
