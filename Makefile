# Each target does its whole set-up on a fresh machine: virtual environment, dependencies, migration,
# and the local services the tests need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= ./data
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck services browser demo bench-api clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: this machine's CPU wheel (an unpinned torch pulls a multi-GB CUDA build)
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $(STAMP)

run: $(STAMP)
	@mkdir -p $(DATA_DIR)
	@RLHF_REGISTRY_DATA_DIR=$(DATA_DIR) $(BIN)/rlhf-registry migrate
	@echo "admin token (principal 'admin', global admin):"
	@RLHF_REGISTRY_DATA_DIR=$(DATA_DIR) $(BIN)/rlhf-registry admin create-token --principal admin --global-admin 2>/dev/null | tail -n 1
	@echo "URL: http://$(HOST):$(PORT)   docs: http://$(HOST):$(PORT)/docs   pages: http://$(HOST):$(PORT)/web/"
	RLHF_REGISTRY_DATA_DIR=$(DATA_DIR) exec $(BIN)/rlhf-registry serve --host $(HOST) --port $(PORT)

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true

# Headless Chromium for the browser tests: Debian's packages, never a downloaded browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi; \
		DEBIAN_FRONTEND=noninteractive $$APT update -qq && \
		DEBIAN_FRONTEND=noninteractive $$APT install -y -qq chromium chromium-driver >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check app workers tests bench demo
	$(BIN)/ruff format --check app workers tests bench demo
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy app workers

test: $(STAMP) services browser lint typecheck
	$(BIN)/pytest -q

# The whole loop on the embedded default, PandaLM data and a tiny model, ending with `verify` on the package.
demo: $(STAMP)
	$(BIN)/python -m demo.run --data-dir demo-data

# MLFLOW=/path/to/mlflow also measures MLflow's registry server (installed apart: see bench/api_mlflow.py)
bench-api: $(STAMP)
	$(BIN)/python bench/api.py $(if $(MLFLOW),--mlflow $(MLFLOW))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
