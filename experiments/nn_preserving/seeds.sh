#!/bin/sh
# Prints the seed-axis tables of results/nn_preserving/README.md (issue 29) from the committed
# results/nn_preserving_seeds tables (experiments/nn_preserving/seeds.yaml, five repeats):
#   sh experiments/nn_preserving/seeds.sh > /tmp/seeds.md
# Each reduction is paired with PCA at the same size, repeat with repeat; "difference" is the
# mean over the five fits with a 95% interval that resamples the fits, then the queries;
# "queries only" is the interval of the fit-averaged differences over the queries alone.
# Verdicts: Benjamini-Hochberg across each table's rows (FDR 0.05), TOST against ±1 point.
set -e
V=${VECBENCH:-.venv/bin/vecbench}
R=${SEEDS_DIR:-results/nn_preserving_seeds}
for d in scifact-sentences-minilm-l6 mnist-test cisi-minilm-l6; do
  echo "### $d: neighbour preservation (recall@10, exact search in the reduced space), against PCA, 5 fit seeds"
  echo
  $V paired $R --baseline "pipeline_kind == 'pca'" --metric recall@10 --within dataset,bytes_per_vector \
    --where "dataset == '$d'" --margin 1 --sort bytes_per_vector,pipeline \
    --drop dataset,index,baseline
  echo
  echo "### $d: the same with the first fit seed only (repeat 0): intervals over queries alone"
  echo
  $V paired $R --baseline "pipeline_kind == 'pca'" --metric recall@10 --within dataset,bytes_per_vector \
    --where "dataset == '$d' and repeat == 0" --margin 1 \
    --sort bytes_per_vector,pipeline --drop dataset,index,baseline
  echo
done
# The rest under five fit seeds (experiments/nn_preserving/seeds_more.yaml): kernel PCA, per-axis
# MPAD and UMAP (exact search), and MPAD / random projection through hnswlib (M 16,
# ef_construction 200, ef 64), each against PCA at the same size and index.
R2=${SEEDS_MORE_DIR:-results/nn_preserving_seeds_more}
if [ -f "$R2/results.parquet" ]; then
  # the (dataset, index) pairs run so far: seeds_more.yaml runs cheapest dataset first
  DONE=$(${PYTHON:-.venv/bin/python} -c "import pandas as pd; t = pd.read_parquet('$R2/results.parquet'); [print(d, i) for d, i in t[['dataset', 'index']].drop_duplicates().itertuples(index=False)]")
  for d in cisi-minilm-l6 mnist-test scifact-sentences-minilm-l6; do
    for i in flat hnswlib; do
      echo "### $d: neighbour preservation through $i (recall@10), against PCA, 5 fit seeds, more methods"
      echo
      if echo "$DONE" | grep -qx "$d $i"; then
        $V paired $R2 --baseline "pipeline_kind == 'pca'" --metric recall@10 \
          --within dataset,index,bytes_per_vector --where "dataset == '$d' and index == '$i'" \
          --margin 1 --sort bytes_per_vector,pipeline --drop dataset,index,baseline
      else
        echo "(not run yet)"
      fi
      echo
    done
  done
fi
