import json, sys
from pathlib import Path
import numpy as np
root = Path("data")
rng = np.random.default_rng(3)
(root / "beir" / "qrels").mkdir(parents=True)
(root / "beir" / "embeddings" / "m").mkdir(parents=True)
(root / "beir" / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(120)))
(root / "beir" / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(6)))
(root / "beir" / "qrels" / "test.tsv").write_text("q\tc\ts\n" + "".join(f"q{i}\td{(7*i) % 120}\t1\n" for i in range(6)))
np.save(root / "beir" / "embeddings" / "m" / "corpus.npy", rng.standard_normal((120, 8), np.float32))
np.save(root / "beir" / "embeddings" / "m" / "queries.npy", rng.standard_normal((6, 8), np.float32))
np.save(root / "b.npy", rng.standard_normal((300, 16)).astype(np.float32))
np.save(root / "q.npy", rng.standard_normal((12, 16)).astype(np.float32))
np.save(root / "tiny.npy", rng.standard_normal((5, 16)).astype(np.float32))
