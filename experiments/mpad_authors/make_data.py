"""Draw the MPAD authors' regime from the shared datasets: 600 indexed + 600 query vectors.

    VECBENCH_DATA=../shared/datasets python experiments/mpad_authors/make_data.py

For each of MNIST (test images), scifact-sentences and cisi (MiniLM corpus embeddings), one seeded
permutation (seed 1, as the authors) of the corpus rows gives three disjoint sets: 600 base rows
(indexed, and the fit set of every reduction), 600 test queries (reported) and up to 600
validation queries (for choosing MPAD's b and alpha). cisi has 1,460 documents, so its validation
split has 260 rows. Queries are corpus rows, as in the authors' runs (no judged queries here).
Writes experiments/mpad_authors/data/<name>/{base,test,validation,queries}.npy (not committed);
queries.npy is test then validation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

N_BASE, N_TEST, N_VALIDATION, SEED = 600, 600, 600, 1
SOURCES = {"mnist": "mnist-test/images.npy",
           "scifact-sentences": "scifact-sentences/embeddings/minilm-l6/corpus.npy",
           "cisi": "cisi/embeddings/minilm-l6/corpus.npy"}


def main() -> None:
    data = Path(os.environ.get("VECBENCH_DATA", "../shared/datasets"))
    out = Path(__file__).resolve().parent / "data"
    for name, source in SOURCES.items():
        x = np.load(data / source).astype(np.float32)
        x = x.reshape(len(x), -1)
        rows = np.random.default_rng(SEED).permutation(len(x))
        parts = {"base": rows[:N_BASE], "test": rows[N_BASE:N_BASE + N_TEST],
                 "validation": rows[N_BASE + N_TEST:N_BASE + N_TEST + N_VALIDATION]}
        (out / name).mkdir(parents=True, exist_ok=True)
        for part, index in parts.items():
            np.save(out / name / f"{part}.npy", np.ascontiguousarray(x[np.sort(index)]))
        # one query file, test rows first: each reduction is fitted once and scored on both
        # splits (the table script splits per_query.parquet at query N_TEST)
        np.save(out / name / "queries.npy",
                np.ascontiguousarray(x[np.r_[np.sort(parts["test"]), np.sort(parts["validation"])]]))
        print(name, {part: len(index) for part, index in parts.items()}, x.shape[1])


if __name__ == "__main__":
    main()
