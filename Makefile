# The set-up commands of the README. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOWEST := .venv-lowest

.PHONY: quickstart test docs lowest bench figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,docs,engines]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/vecbench run --example quickstart

# the test suite (tests/cli/test_docs.py builds the site with --strict), then the site itself; the
# browser and emulator some tests use are installed first where missing (tools/system-deps.sh)
test: $(STAMP)
	bash tools/system-deps.sh
	VECBENCH_DATA=$${VECBENCH_DATA:-$(abspath ../shared/datasets)} $(BIN)/pytest -q
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The lower bounds in pyproject.toml are true: install exactly the lowest allowed version of every
# direct dependency (and of the test extra) in a fresh venv, vecbench itself (not editable) on
# top, and run the fast tests against that install.
lowest:
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(PYTHON) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  print("\n".join(d.replace(">=", "==") for d in p["dependencies"] + p["optional-dependencies"]["test"]))' \
	  > $(LOWEST)/requirements.txt
	$(LOWEST)/bin/pip install --quiet -r $(LOWEST)/requirements.txt
	$(LOWEST)/bin/pip install --quiet --no-deps .
	$(LOWEST)/bin/pip list --format=freeze > $(LOWEST)/installed.txt
	VECBENCH_CACHE=$${VECBENCH_CACHE:-$(abspath $(LOWEST))/cache} $(LOWEST)/bin/pytest -q -p no:cacheprovider \
	  -m "not slow and not realdata"

# every benchmark, then RESULTS.md re-rendered from what they recorded (BENCH= to run a subset)
BENCH ?= benchmarks
bench: $(STAMP)
	VECBENCH_DATA=$${VECBENCH_DATA:-$(abspath ../shared/datasets)} $(BIN)/pytest $(BENCH) -q -s -o python_files='bench_*.py' --benchmark-columns=min,mean,max
	$(BIN)/python benchmarks/render.py

# The committed figures of every reference study present under results/ (each study's README
# shows them); rerun after `vecbench run` + `vecbench collect`. OUT= writes them elsewhere
# (tests/cli/test_stale_results.py regenerates them into a temporary folder and compares).
OUT ?= results
PLOT = $(BIN)/vecbench plot
figures: $(STAMP)
	@set -e; \
	if [ -f results/scifact_indexes/results.csv ]; then \
	  $(PLOT) results/scifact_indexes --kind pareto -o $(OUT)/scifact_indexes/pareto.png; fi; \
	if [ -f results/engines/results.csv ]; then $(PLOT) results/engines --kind pareto \
	  --where "\`search.clients\` == 1" -o $(OUT)/engines/qps_recall.png \
	  --title "engines at 1 client (M 16, ef_construction 64)"; fi; \
	if [ -f results/filtered_rag/scifact/per_query.parquet ]; then \
	  $(BIN)/python experiments/filtered_rag/table.py --out $(OUT)/filtered_rag; fi; \
	if [ -f results/streaming/results.parquet ]; then \
	  $(BIN)/python experiments/streaming/tables.py results/streaming $(OUT)/streaming; fi; \
	if [ -f results/rag_storage/results.csv ]; then \
	  $(PLOT) results/rag_storage --kind tradeoff --where "index == 'flat'" --hue pipeline_kind \
	    --y ndcg@10 --budget 128 --budget 256 --budget 512 -o $(OUT)/rag_storage/tradeoff_ndcg.png \
	    --title "nDCG@10 vs bytes per vector (exact search over the compressed vectors)"; \
	  $(PLOT) results/rag_storage --kind tradeoff --where "index == 'flat'" --hue pipeline_kind \
	    --y recall@10 --budget 128 --budget 256 --budget 512 -o $(OUT)/rag_storage/tradeoff_recall.png \
	    --title "recall@10 vs bytes per vector (exact search over the compressed vectors)"; \
	  for y in ndcg recall; do $(PLOT) results/rag_storage --kind tradeoff \
	    --where "pipeline == 'float32' and index != 'hnswlib'" --hue index --y $$y@10 \
	    --budget 48 --budget 96 --budget 192 --budget 384 -o $(OUT)/rag_storage/index_codes_$$y.png \
	    --title "$$y@10 vs bytes per vector: indexes that store their own codes (exhaustive scans)"; done; fi; \
	if [ -f results/nn_preserving/results.csv ]; then \
	  $(PLOT) results/nn_preserving --kind tradeoff --where "index == 'flat' and pipeline != 'float32'" \
	    --hue pipeline_kind --y recall@10 -o $(OUT)/nn_preserving/preservation.png \
	    --title "neighbour preservation: recall@10 of exact search in the reduced space"; \
	  $(PLOT) results/nn_preserving --kind tradeoff --where "index == 'flat' and pipeline != 'float32'" \
	    --hue pipeline_kind --y trustworthiness@10 -o $(OUT)/nn_preserving/trustworthiness.png \
	    --title "trustworthiness@10 (scikit-learn, 2,000-vector sample)"; fi; \
	if [ -f results/hnsw_ordering/results.csv ]; then \
	  $(PLOT) results/hnsw_ordering --kind pareto --where "dataset in ['synthetic-d384-id4', 'synthetic-d384-id8', 'synthetic-d384-id16', 'synthetic-d384-id32', 'synthetic-d384-id64', 'synthetic-d384-id128', 'synthetic-d384-id384']" \
	    --hue dataset --facet index -o $(OUT)/hnsw_ordering/intrinsic_dim.png \
	    --title "recall vs QPS by intrinsic dimension (50k x 384, M=16, ef_construction=200)"; \
	  $(PLOT) results/hnsw_ordering --kind ordering \
	    --where "\`search.ef\` == 10 and dataset in ['scifact-sentences-minilm-l6', 'mnist-test', 'synthetic-d128-id16']" \
	    -o $(OUT)/hnsw_ordering/ordering.png --title "recall@10 by insertion order (hnswlib M=16, ef_construction=200, ef=10)"; \
	  VECBENCH_DATA=$${VECBENCH_DATA:-$(abspath ../shared/datasets)} $(BIN)/vecbench lid mnist-test \
	    "beir: {path: scifact-sentences, embeddings: minilm-l6}" \
	    "synthetic: {n_base: 20000, n_queries: 1000, dim: 128, intrinsic_dim: 16, n_clusters: 32, noise: 0.05}" \
	    -o $(OUT)/hnsw_ordering/lid.png; fi; \
	if [ -f results/hnsw_ordering_map/results.parquet ]; then \
	  mkdir -p $(OUT)/hnsw_ordering_map; $(BIN)/python experiments/hnsw_ordering_map/tables.py $(OUT)/hnsw_ordering_map; fi; \
	if [ -f results/mpad_authors/results.parquet ]; then \
	  mkdir -p $(OUT)/mpad_authors; $(BIN)/python experiments/mpad_authors/tables.py $(OUT)/mpad_authors; fi; \
	if [ -f results/mpad_authors_seeds/results.parquet ]; then \
	  mkdir -p $(OUT)/mpad_authors_seeds; \
	  $(BIN)/python experiments/mpad_authors/seed_tables.py $(OUT)/mpad_authors_seeds; fi; \
	if [ -f results/hnsw_ordering_map_rerun/results.parquet ]; then \
	  mkdir -p $(OUT)/hnsw_ordering_map_rerun; \
	  $(BIN)/python experiments/hnsw_ordering_map/rerun_tables.py $(OUT)/hnsw_ordering_map_rerun; fi; \
	if [ -f results/production_load/results.csv ]; then \
	  mkdir -p $(OUT)/production_load; $(BIN)/python experiments/production_load/tables.py \
	    results/production_load/results.csv $(OUT)/production_load; fi

clean:
	rm -rf $(VENV) $(LOWEST) site results/quickstart
