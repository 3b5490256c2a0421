# Two set-up commands, each from a fresh clone with only Python:
#   make demo   -- venv, install, run a batch of 200 prompts against the built-in fake provider
#   make test   -- venv, install with dev extras, PostgreSQL if missing, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint check clean postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The example provider plugin too: the tests prove a provider can come from outside.
$(VENV)/.installed-dev: pyproject.toml examples/replicate_provider/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e examples/replicate_provider
	touch $@ $(VENV)/.installed

# A batch of 200 prompts against the built-in fake provider: progress bar, summary,
# then the first lines of the output. Each run starts afresh (.demo/ is removed).
demo: $(VENV)/.installed
	rm -rf .demo
	CREATIVE_SIMULATE_STATE=.demo/simulated $(BIN)/creative batch examples/prompts.jsonl --simulate --out .demo/out.jsonl --download .demo/media
	@echo "--- the first lines of .demo/out.jsonl:"
	@head -n 3 .demo/out.jsonl

# The tests start their own PostgreSQL servers on loopback: the binaries must be there
# (as root with apt-get, .ci/ensure-postgres installs Debian's postgresql).
postgres:
	bash .ci/ensure-postgres

test: $(VENV)/.installed-dev postgres
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check creative_client tests examples benchmarks
	$(BIN)/ruff format --check creative_client tests examples benchmarks
	$(BIN)/mypy --strict creative_client tests examples benchmarks

check: test lint

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache .hypothesis
