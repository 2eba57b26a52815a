# newsflow: `make run` and `make test` are all a fresh machine needs (Python 3.11 + make).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CODE   := normalizers warehouse pipeline flows tests bench scripts

# Every process started from here: analytics off, Prefect state inside the project.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: run test test-fast lint check bench bench-html bench-deps reliability lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BYTECODE)
	touch $@

# Every process of a run (the command, Prefect's server, each worker) imports the
# project's modules; compiled ahead, none of them compiles them again where Python may
# not write bytecode itself (PYTHONDONTWRITEBYTECODE): ~50 ms of CPU per process.
BYTECODE := $(BIN)/python -m compileall -q normalizers warehouse pipeline flows

## run: ingest the bundled sample corpus and query it
run: $(STAMP)
	@$(BYTECODE)
	$(BIN)/newsflow run
	@echo
	@echo "Articles per source and month:"
	$(BIN)/newsflow query "SELECT source, year, month, count(*) AS articles, sum(word_count) AS words FROM articles GROUP BY ALL ORDER BY ALL"
	@echo "Quarantined inputs:"
	$(BIN)/newsflow query "SELECT source, reason, regexp_extract(source_uri, '[^/]+$$') AS file, message FROM quarantine ORDER BY ALL"
	@echo "Coverage per source and day:"
	$(BIN)/newsflow query "SELECT source, day, runs, expected, written, duplicates, quarantined FROM coverage ORDER BY ALL"
	@echo "Report with charts (open it in a browser):"
	$(BIN)/newsflow report

## test: lint, type-check and run the test suite
# Two pytest-xdist workers, idle ones taking tests queued on the other (worksteal): most
# slow tests wait on servers and subprocesses, so two share this 2-core machine well.
test: lint $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

## test-fast: the tests not marked slow (no Prefect server starts, serve, kill or subprocess CLI runs)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

## bench: text ingestion, steady state and one-shot (prints figures; see BENCHMARKS.md); e.g. make bench BENCH_ARGS="--repeat 3"
bench: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python bench/ingest_text.py $(BENCH_ARGS)

## reliability: kill runs, backfills and re-normalisations at many points and check what they leave;
## writes RELIABILITY.md (~10 min on 2 cores; RELIABILITY_ARGS="--quick" for a smoke version)
reliability: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python scripts/reliability.py $(RELIABILITY_ARGS)

# The development sets with gold text bench-html reads (not part of the repository).
BENCH_HTML_SETS ?= ../shared/data/aeb ../shared/data/wcxb-dev

## bench-html: real pages through newsflow run against trafilatura (needs make bench-deps and BENCH_HTML_SETS)
bench-html: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python bench/ingest_html.py $(BENCH_HTML_SETS) $(BENCH_ARGS)

## bench-deps: add the optional extractors bench/extraction.py compares against, and the model-fitting tools
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-bench.lock

## lock: re-resolve the locks from requirements*.in (needs the package index)
lock:
	$(PYTHON) -m venv .tools && .tools/bin/python -m pip install --quiet uv==0.13.9
	.tools/bin/uv pip compile requirements.in --python-version 3.11 --generate-hashes \
		--no-emit-package newsflow -o requirements.lock
	.tools/bin/uv pip compile requirements-bench.in --python-version 3.11 --generate-hashes \
		--no-emit-package newsflow -o requirements-bench.lock

clean:
	rm -rf $(VENV) .tools .prefect .cache data .pytest_cache .mypy_cache .ruff_cache
