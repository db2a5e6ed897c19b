import os

import pytest

# pytester's in-process runs drop the modules first imported during a run; PyYAML's C extension
# cannot be re-imported that way (its nodes then carry no tags), so it is imported here, once
import yaml  # noqa: E402,F401

DATA = os.environ.get("VECBENCH_DATA")
HAVE_DATA = bool(DATA) and os.path.isdir(DATA)
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason="real datasets absent: set VECBENCH_DATA to ../shared/datasets")
# Timings in tests check the protocol, not the machine: 5 passes of any length, not 1 s of them.
# Rows record the value used (it is part of each unit's spec). Subprocesses inherit it.
os.environ.setdefault("VECBENCH_MIN_SECONDS", "0")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep caches of the test session out of the user's ~/.cache."""
    if "VECBENCH_CACHE" not in os.environ or os.environ.get("CI"):
        os.environ["VECBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
