import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    os.environ["VECBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
