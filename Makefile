# The two commands in README.md: `make smoke` (the study's main job for now) and `make test`.
PROFILE ?= full
VENV := .venv/bin

.PHONY: setup smoke test test-unit lab clean

setup:
	@bash infra/setup.sh

smoke: setup
	$(VENV)/ingestlab smoke --profile $(PROFILE)

test: setup
	$(VENV)/pytest tests

test-unit: setup
	$(VENV)/pytest tests/unit

lab: setup
	$(VENV)/jupyter lab notebooks/

clean:
	rm -rf data/runs reports .pytest_cache .ruff_cache
