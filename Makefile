# Jalytics — the everyday commands. `make help` lists them.
SHELL := /bin/bash
VENV := .venv/bin

.DEFAULT_GOAL := help
.PHONY: help install lock up down status logs test lint fmt unit rules bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: ## create .venv with the package and its dev tools
	@bash ops/python.sh

# The lock: every dependency, dev tools included, pinned for Python 3.11+ on any platform.
LOCK := $(VENV)/uv pip compile pyproject.toml --extra dev --extra backtest --universal \
	--python-version 3.11 --no-emit-package jalytics --quiet -o constraints.txt

lock: install ## re-pin constraints.txt after editing pyproject.toml (ARGS=--upgrade: newest of all)
	$(LOCK) $(ARGS)
	@bash ops/python.sh

up: ## bring up the whole system locally (PostgreSQL, Kafka, Prometheus, Alertmanager, the workers under supervisord)
	@bash ops/up.sh

down: ## stop everything `make up` started
	@bash ops/down.sh

status: ## the state of each worker (supervisord), Prometheus, Alertmanager, Kafka and PostgreSQL
	@rc=0; bash ops/workers.sh status || rc=1; \
	for service in prometheus alertmanager kafka postgres; do bash ops/$$service.sh status || rc=1; done; exit $$rc

logs: ## follow the workers' logs (NAME=detector for one; Ctrl-C to stop)
	@bash ops/workers.sh logs $(NAME)

lint: install ## ruff (lint + format check) and mypy --strict
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

fmt: install ## format and auto-fix
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

rules: ## check the Prometheus config and alert rules, run the rules' unit tests (promtool), check the Alertmanager config (amtool)
	@bash ops/prometheus.sh check
	@bash ops/alertmanager.sh check

unit: install ## the fast tests only (no broker, no database)
	$(VENV)/pytest tests/unit

test: lint rules ## lint and rule tests, then every test against real Kafka and PostgreSQL (and Chromium)
	@bash ops/chromium.sh install >/dev/null
	@command -v jq >/dev/null || (source ops/lib.sh && apt_install_missing install jq) >/dev/null # tests/e2e/test_walkthrough.py
	$(VENV)/pytest

bench: install ## performance suite on real Kafka/PostgreSQL, 3 rounds (ARGS="--quick", "--skip-10m", ...)
	@command -v wrk >/dev/null || { source ops/lib.sh && apt_install_missing install wrk && require_cmd wrk "apt-get install -y wrk"; }
	@if [ -z "$$DATABASE_URL" ]; then env=$$(bash ops/postgres.sh start) || exit 1; eval "$$env"; fi; \
	if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ]; then env=$$(bash ops/kafka.sh start) || exit 1; eval "$$env"; fi; \
	export DATABASE_URL KAFKA_BOOTSTRAP_SERVERS; \
	$(VENV)/python -m benchmarks.suite $(ARGS)
