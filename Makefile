# The two commands in README.md: `make study` (PROFILE=full|quick) and `make test`.
PROFILE ?= full
VENV := .venv/bin

.PHONY: setup study report smoke test test-unit lab clean

setup:
	@bash infra/setup.sh

study: setup
	$(VENV)/ingestlab study --profile $(PROFILE)

report: setup
	$(VENV)/ingestlab report

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
