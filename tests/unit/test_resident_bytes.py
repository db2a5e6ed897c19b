"""``resident_bytes_per_vector``: everything a configuration keeps in memory, per vector.

Each expectation is computed by hand from the parameters (n, d, m, nbits, leaves, ...): the
codes, the copies an index or a rescoring stage holds, and the per-dataset parameters (PQ
codebooks, the OPQ rotation, RaBitQ's centre, ScaNN's codebook and partition centres, a
quantizer's scales) amortized over the n base vectors. The only bytes not computed by hand are
the libraries' serialization headers (faiss: a few dozen bytes per index), which are bounded.
"""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

from vecbench.evaluate import results as vbresults
from vecbench.run import runner
from vecbench.run.experiment import load_experiment

N, D = 1000, 32
#: faiss's serialized headers (fourcc, dimension, counts, metric; per wrapped index): what a
#: test cannot take from the parameters. Measured at 33-160 bytes per index here.
FAISS_HEADERS = 256
HAVE_SCANN = importlib.util.find_spec("scann") is not None


def run(tmp_path, pipelines: str, indexes: str):
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(f"""
        name: resident
        k: 10
        datasets: [{{synthetic: {{n_base: {N}, n_queries: 20, dim: {D}, intrinsic_dim: 8}}}}]
        pipelines: {pipelines}
        indexes:
        """) + textwrap.indent(textwrap.dedent(indexes), "  "))
    summary = runner.run_experiment(load_experiment(path), tmp_path / "r", threads=1,
                                    log=lambda line: None)
    assert not summary.failed, summary.failed
    frame = vbresults.table(tmp_path / "r")
    assert (frame["status"] == "ok").all(), frame["reason"].tolist()
    return frame


def assert_resident(row, by_hand: float, headers: float = FAISS_HEADERS) -> None:
    """``row``'s resident bytes are ``by_hand`` plus at most ``headers`` bytes in all."""
    excess = (row["resident_bytes_per_vector"] - by_hand) * N
    assert 0 <= excess <= headers, (row["index"], row["resident_bytes_per_vector"], by_hand)


def test_pq_and_opq_count_their_codebooks_and_rotation(tmp_path):
    frame = run(tmp_path, "[[]]", """
        - faiss_pq: {build: {m: 8, nbits: 8, opq: [false, true]}}
        - faiss_rabitq: {}
        """)
    pq = frame[(frame["index"] == "faiss_pq") & ~frame["build.opq"].astype(bool)].iloc[0]
    opq = frame[(frame["index"] == "faiss_pq") & frame["build.opq"].astype(bool)].iloc[0]
    codebooks = 8 * 2**8 * (D // 8) * 4     # m codebooks of 2^nbits centres of d/m floats
    rotation = D * D * 4                    # OPQ's d x d float32 matrix
    assert pq["bytes_per_vector"] == 8      # the codes alone, as before
    assert_resident(pq, 8 + codebooks / N)                 # 8 + 32.768
    assert_resident(opq, 8 + (codebooks + rotation) / N)   # 8 + 36.864
    rabitq = frame[frame["index"] == "faiss_rabitq"].iloc[0]
    # d sign bits + two float32 factors per vector; the centre (d floats) once
    assert rabitq["bytes_per_vector"] == D / 8 + 8
    assert_resident(rabitq, D / 8 + 8 + 4 * D / N)


def test_simulated_int4_counts_the_float32_the_index_holds_and_the_scales(tmp_path):
    frame = run(tmp_path, "[[int4: {}]]", """
        - flat: {}
        """)
    row = frame.iloc[0]
    assert row["quantization"] == "simulated"
    assert row["bytes_per_vector"] == D / 2          # the int4 codes, two per byte
    # the flat index holds the decoded float32; min/max calibration keeps a step and an
    # offset (float32) per dimension
    assert_resident(row, 4 * D + 2 * 4 * D / N)


def test_binary_with_float32_rescoring_counts_the_copy(tmp_path):
    frame = run(tmp_path, "[[binary: {}]]", """
        - faiss_binary_flat:
            rescore: [{}, {oversample: 10, with: float32}, {oversample: 10, with: int8}]
        """)
    plain = frame[frame["rescore_bytes_per_vector"].isna()].iloc[0]
    float32 = frame[frame["rescore.with"] == "float32"].iloc[0]
    int8 = frame[frame["rescore.with"] == "int8"].iloc[0]
    assert plain["quantization"] == "native"
    for row in (plain, float32, int8):
        assert row["bytes_per_vector"] == D / 8      # what `best` used to judge them by
    assert_resident(plain, D / 8)
    assert_resident(float32, D / 8 + 4 * D)          # + the original float32 vectors
    # + the int8 copy and its per-dimension scale (one float32 per dimension)
    assert_resident(int8, D / 8 + D + 4 * D / N)


def test_hnsw_links_are_resident(tmp_path):
    frame = run(tmp_path, "[[binary: {}]]", """
        - faiss_binary_hnsw: {build: {M: 8}, rescore: [{oversample: 10, with: float32}]}
        """)
    row = frame.iloc[0]
    links = row["graph_bytes_per_vector"]
    assert links >= 2 * 8 * 4 + 4 + 8          # 2M level-0 links, a level and an offset
    assert_resident(row, D / 8 + links + 4 * D)


@pytest.mark.skipif(not HAVE_SCANN, reason="scann is not installed here")
def test_scann_counts_what_it_saves(tmp_path):
    frame = run(tmp_path, "[[]]", """
        - scann: {build: {num_leaves: 16, dims_per_block: 2}}
        """)
    row = frame.iloc[0]
    blocks, centres, leaves = D // 2, 16, 16
    # the codes are counted at 4 bits per block, but ScaNN saves one byte per block
    assert row["bytes_per_vector"] == blocks / 2 + 4 * D
    per_vector = blocks + 4 + 4 * D         # uint8 per block, leaf token, float32 reorder copy
    npy_headers = 3 * 128
    # the anisotropic codebook (centres x d floats) and the leaves' centres (leaves x d),
    # written as protocol buffers: at least float32 each, at most float64 plus framing
    low = centres * D * 4 + leaves * D * 4
    high = 2 * low + 8 * (blocks * centres + leaves) + 2048
    excess = row["resident_bytes_per_vector"] * N - per_vector * N - npy_headers
    assert low <= excess <= high, excess


def test_a_record_without_pipeline_model_bytes_counts_the_quantizer_scales():
    from vecbench.run.schema import BuildInfo, DatasetInfo, EncodeInfo, UnitRecord, UnitSpec

    record = UnitRecord(UnitSpec("e", {}, "", {}), "ok", dataset=DatasetInfo("d", n_base=500),
                        build=BuildInfo(0.0, 500 * 24 + 4000, 1, True, 16.0, 8.0),
                        encode=EncodeInfo("int8", 16.0, model_bytes=1000))
    # the serialized index (12,000 B of codes and ids + 4,000 B of centroids) over 500
    # vectors, plus the quantizer's 1,000 B of scales over 500
    assert vbresults.resident_bytes(record) == 24 + 8 + 2
    record.encode.pipeline_model_bytes = 3000   # a PCA matrix as well
    assert vbresults.resident_bytes(record) == 24 + 8 + 6
    record.build.index_bytes = 100              # an engine that reports less than
    assert vbresults.resident_bytes(record) == 24 + 6  # it holds: the held bytes count


def test_best_judges_by_what_is_resident(tmp_path, capsys):
    """Under a 100-byte budget of codes, binary + float32 rescoring "fits" (4 B of codes);
    by resident bytes (4 + 128) it does not, and `best` says which bytes it shows."""
    from vecbench.cli.commands import main

    run(tmp_path, "[[binary: {}]]", """
        - faiss_binary_flat: {rescore: [{}, {oversample: 10, with: float32}]}
        """)
    main(["best", str(tmp_path / "r"), "--budget", "bytes_per_vector<=100",
          "--maximize", "recall@10"])
    by_codes = capsys.readouterr()
    assert "with: float32" in by_codes.out           # the copy was not counted
    assert "resident_bytes_per_vector counts" in by_codes.err   # and the user is told
    main(["best", str(tmp_path / "r"), "--budget", "resident_bytes_per_vector<=100",
          "--maximize", "recall@10"])
    by_resident = capsys.readouterr().out
    assert "rescore" not in by_resident.split("# measured:")[0]
    assert f"#   resident_bytes_per_vector: {D / 8 + 0.033:.6g}" in by_resident  # + header
    assert "# memory: resident_bytes_per_vector (codes, graph links" in by_resident
