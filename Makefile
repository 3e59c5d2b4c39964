# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both (re)use .venv and reinstall only when a requirement file or a package's pyproject changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQ_FILES := requirements.txt requirements-dev.txt sft/pyproject.toml grpo/pyproject.toml eval/pyproject.toml \
	demo/pyproject.toml
REQ_HASH := $(shell cat $(REQ_FILES) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.stamp-$(REQ_HASH)

# Offline everywhere: tests and the demo never touch the hub or wandb's servers.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export WANDB_MODE := disabled
export HF_HUB_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export TOKENIZERS_PARALLELISM := false
# DeepSpeed on machines without a GPU.
export DS_ACCELERATOR ?= $(shell $(PYTHON) -c "import shutil,sys; sys.stdout.write('' if shutil.which('nvidia-smi') else 'cpu')")
PYTEST_ARGS ?=
FRESH ?= 0
SEED ?= 0

.PHONY: setup test test-slow test-gpu test-browser lint style demo chat clean-venv

setup: $(STAMP)

$(STAMP): $(REQ_FILES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e sft -e grpo -e eval -e demo
	$(PY) -m pip check
	@rm -f $(VENV)/.stamp-*
	@touch $(STAMP)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-gpu: setup
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

# Headless Chromium tests (the chat page and the report): Debian's chromium and its driver, installed if missing.
test-browser: setup
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "installing Debian's chromium and chromium-driver"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

style: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: setup
	$(PY) scripts/run_demo.py --output_dir demo_out --seed $(SEED) $(if $(filter 1,$(FRESH)),--fresh,)

# The chat page on the demo's latest checkpoint (after `make demo`): http://127.0.0.1:7860 (CHAT_ARGS for more flags).
CHAT_ARGS ?=
chat: setup
	@test -d demo_out || { echo "no demo_out/ here: run 'make demo' first" >&2; exit 2; }
	$(VENV)/bin/tinyrs-eval chat --demo_dir demo_out $(CHAT_ARGS)

clean-venv:
	rm -rf $(VENV)
