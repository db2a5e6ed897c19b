"""The summary table of results/nn_preserving/README.md's seed section, from what seeds.sh prints:

    sh experiments/nn_preserving/seeds.sh | .venv/bin/python experiments/nn_preserving/seed_summary.py

Per dataset and size: MPAD minus PCA with the first fit seed alone (interval over queries) and
with five fit seeds (interval over seeds and queries), their verdicts, and the two widths of the
five-seed difference: over queries alone and over seeds and queries.
"""

import re
import sys
text = sys.stdin.read()
blocks = re.split(r"^### ", text, flags=re.M)[1:]
rows = {}
for b in blocks:
    head, *lines = b.split("\n")
    ds = head.split(":")[0]
    kind = "seeds" if "5 fit seeds" in head else "one"
    cols = None
    for l in lines:
        if l.startswith("| pipeline"):
            cols = [c.strip() for c in l.strip("|").split("|")]
        elif l.startswith("| mpad") or l.startswith("| random"):
            cells = dict(zip(cols, [c.strip() for c in l.strip("|").split("|")]))
            key = (ds, cells["pipeline"].split("(")[0], int(cells["bytes_per_vector"]) // 4)
            rows.setdefault(key, {})[kind] = cells
name = {"scifact-sentences-minilm-l6": "scifact-sentences", "mnist-test": "MNIST", "cisi-minilm-l6": "cisi"}
def width(ci):
    lo, hi = map(float, re.findall(r"[+-]\d+\.\d+", ci)[-2:]); return hi - lo
print("| dataset | method | dims | seed 0 only: difference [95% CI over queries] | verdict | 5 fit seeds: difference [95% CI over seeds and queries] | verdict | width: queries only / seeds and queries |")
print("|---|---|---:|---|---|---|---|---|")
for (ds, m, d), v in rows.items():
    if m != "mpad" or "seeds" not in v or "one" not in v: continue
    one, s = v["one"], v["seeds"]
    print(f"| {name[ds]} | MPAD | {d} | {one['difference [95% CI]']} | {one['verdict']} | {s['difference [95% CI]']} | {s['verdict']} | {width(s['queries only [95% CI]']):.2f} / {width(s['difference [95% CI]']):.2f} |")
