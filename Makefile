# Each target does its whole set-up on a fresh machine: virtual environment, dependencies, migration,
# and the local services the tests need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The PPO worker's environment: TRL removed PPOTrainer in 1.13, so ppo runs train in a venv of their own,
# pinned in workers/ppo/requirements.txt, whose workers consume the `ppo` queue.
PPO_VENV := .venv-ppo
PPO_STAMP := $(PPO_VENV)/.installed
DATA_DIR ?= ./data
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run worker-ppo test lint typecheck services system-packages browser demo bench-api clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: this machine's CPU wheel (an unpinned torch pulls a multi-GB CUDA build)
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	touch $(STAMP)

# the project itself (no extras: its training stack is the requirements file's) and torch first, pinned
$(PPO_STAMP): pyproject.toml workers/ppo/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	test -x $(PPO_VENV)/bin/python || $(PYTHON) -m venv $(PPO_VENV)
	$(PPO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PPO_VENV)/bin/python -m pip install --quiet 'torch==2.13.0'
	$(PPO_VENV)/bin/python -m pip install --quiet -e . -r workers/ppo/requirements.txt
	touch $(PPO_STAMP)

run: $(STAMP)
	@mkdir -p $(DATA_DIR)
	@RLHF_REGISTRY_DATA_DIR=$(DATA_DIR) $(BIN)/rlhf-registry migrate
	@echo "admin token (principal 'admin', global admin):"
	@RLHF_REGISTRY_DATA_DIR=$(DATA_DIR) $(BIN)/rlhf-registry admin create-token --principal admin --global-admin 2>/dev/null | tail -n 1
	@echo "URL: http://$(HOST):$(PORT)   docs: http://$(HOST):$(PORT)/docs   pages: http://$(HOST):$(PORT)/web/"
	RLHF_REGISTRY_DATA_DIR=$(DATA_DIR) exec $(BIN)/rlhf-registry serve --host $(HOST) --port $(PORT)

# A worker for ppo runs beside `make run` (same data folder and broker); start `make run` with
# RLHF_REGISTRY_PPO_WORKERS=1 so that the API accepts them.
worker-ppo: $(PPO_STAMP)
	RLHF_REGISTRY_DATA_DIR=$(DATA_DIR) exec $(PPO_VENV)/bin/rlhf-registry worker --queues ppo

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true

# The system packages the tests use, from Debian (never a downloaded browser): headless Chromium for the
# browser tests; Go with golang.org/x/mod for the check of signed audit checkpoints by Go's signed-note
# verifier; poppler-utils (pdftoppm, pdftotext) for the handoff PDF's layout test; curl and jq for the
# guide's walk-through.
system-packages:
	@{ command -v chromium && command -v go && [ -d /usr/share/gocode/src/golang.org/x/mod ] && command -v pdftoppm \
		&& command -v curl && command -v jq; } >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi; \
		DEBIAN_FRONTEND=noninteractive $$APT update -qq && \
		DEBIAN_FRONTEND=noninteractive $$APT install -y -qq chromium chromium-driver \
			golang-go golang-golang-x-mod-dev poppler-utils curl jq >/dev/null; }

# the former name of system-packages
browser: system-packages

lint: $(STAMP)
	$(BIN)/ruff check app workers tests bench demo
	$(BIN)/ruff format --check app workers tests bench demo
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy app workers

test: $(STAMP) $(PPO_STAMP) services system-packages lint typecheck
	$(BIN)/pytest -q

# The whole loop on the embedded default, PandaLM data and a tiny model, ending with `verify` on the package.
demo: $(STAMP)
	$(BIN)/python -m demo.run --data-dir demo-data

# MLFLOW=/path/to/mlflow also measures MLflow's registry server (installed apart: see bench/api_mlflow.py)
bench-api: $(STAMP)
	$(BIN)/python bench/api.py $(if $(MLFLOW),--mlflow $(MLFLOW))

clean:
	rm -rf $(VENV) $(PPO_VENV) .pytest_cache .mypy_cache .ruff_cache
