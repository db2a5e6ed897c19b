# The two set-up commands of the README. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test bench figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/vecbench run experiments/quickstart.yaml

test: $(STAMP)
	VECBENCH_DATA=$${VECBENCH_DATA:-$(abspath ../shared/datasets)} $(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/pytest benchmarks -q -s -o python_files='bench_*.py' --benchmark-columns=min,mean,max

# the plots of every committed reference study, from its committed results.csv
figures: $(STAMP)
	for dir in results/*/; do \
	  if [ -f "$$dir/results.csv" ]; then \
	    $(BIN)/vecbench plot "$$dir/results.csv" --kind pareto -o "$$dir/pareto.png" || exit 1; \
	  fi; \
	done

clean:
	rm -rf $(VENV) results/quickstart
