# Self-describing targets: `make help`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama.cpp compiled for this CPU family without AMX (AMX kernels crash where the OS does not grant AMX).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export GRADIO_ANALYTICS_ENABLED = False
export ANONYMIZED_TELEMETRY = False

.PHONY: help setup browser tools run ingest ask test test-unit test-integration eval eval-gate bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/chatbot: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/chatbot

setup: $(BIN)/chatbot ## create .venv and install everything (first time: ~15 min, llama.cpp compiles)

run: setup ## set up, index the corpus (when missing or stale), serve the chat and API on http://127.0.0.1:7860/
	$(BIN)/chatbot serve --ingest

ingest: setup ## index corpus/ into index/
	$(BIN)/chatbot ingest

browser: ## Debian's Chromium and a Chinese font for the browser tests (Playwright drives it; nothing downloads a browser)
	@{ command -v chromium >/dev/null 2>&1 && dpkg -s fonts-wqy-microhei >/dev/null 2>&1; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

TOOLS := .venv-tools
$(TOOLS)/llm/bin/llm:
	$(PY) -m venv $(TOOLS)/llm
	$(TOOLS)/llm/bin/pip install --quiet llm==0.36

# llama-index-llms-openai-like needs openai<3; the project pins openai 3.57, so it gets a venv of its own
$(TOOLS)/llamaindex/bin/python:
	$(PY) -m venv $(TOOLS)/llamaindex
	$(TOOLS)/llamaindex/bin/pip install --quiet llama-index-llms-openai-like==0.8.1

tools: $(TOOLS)/llm/bin/llm $(TOOLS)/llamaindex/bin/python ## third-party clients the client tests drive, each in its own venv under .venv-tools/ (llm CLI, llama-index OpenAILike)

test: setup browser tools ## set up and run every test (unit, integration with real models, served app in a real browser, eval gate)
	$(BIN)/python -m pytest tests -q

test-unit: setup ## fast tests, no models
	$(BIN)/python -m pytest tests/unit -q

eval: setup ## the full eval suite (dev and test splits, follow-up conversations) with the baseline side by side
	$(BIN)/chatbot ingest --quiet
	$(BIN)/chatbot eval --conversations --baseline

eval-gate: setup ## the fast CI subset of the held-out test split, failing past eval/thresholds.toml
	$(BIN)/chatbot ingest --quiet
	$(BIN)/chatbot eval --split test --subset eval/gate_subset.txt --gate eval/thresholds.toml

bench: setup ## print ingest, retrieval and answer latency figures on this machine
	$(BIN)/python bench/bench.py

lint: setup ## ruff and mypy
	$(BIN)/python -m ruff check chatbot tests bench
	$(BIN)/python -m mypy chatbot

clean: ## remove the index (the venv stays)
	rm -rf index/chroma index/*.json index/*.npz index/texts index/ingest.lock
