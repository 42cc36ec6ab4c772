# Two commands: `make compare` runs the main job, `make test` runs the test suite
# (`make sweep` runs the default sweep).
# Each builds .venv first when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: compare sweep test bench seed-example clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

compare: $(VENV)/.installed
	$(BIN)/python experiments/compare.py $(ARGS)

# The default learning-curve sweep; --resume continues (or just re-reports) the same grid
# in reports/sweep, and refuses a changed one (remove the folder or pass --out).
sweep: $(VENV)/.installed
	$(BIN)/python experiments/sweep.py --resume $(ARGS)

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

seed-example: $(VENV)/.installed
	$(BIN)/python experiments/seed_example.py

$(VENV)/.bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
