# pairforge: the two set-up commands are `make demo` and `make test`; both create .venv on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out/quickstart
# torch/torchvision pinned as a pair that imports together (see README, "Install")
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: install install-test demo test bench bench-gpu fitness lint clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install -q $(TORCH_PINS) -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install -q $(TORCH_PINS) -e '.[test]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(BIN)/python -m pip install -q $(TORCH_PINS) -e '.[bench]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/pairforge run configs/quickstart.yaml --out $(OUT)
	$(BIN)/pairforge info $(OUT)
	$(BIN)/pairforge preview $(OUT) --out $(OUT)/preview.png
	@echo "demo output: $(OUT) (shards in $(OUT)/shards, contact sheet $(OUT)/preview.png, dataset card $(OUT)/README.md)"
	@echo "open $(OUT)/report.html in a browser: the run report"

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/run_all.py

# on a CUDA machine: every GPU path in one prepared run of at most BUDGET seconds (bench/results/gpu.json)
BUDGET ?= 480
bench-gpu: $(VENV)/.installed-test
	$(BIN)/python -m pip install -q $(TORCH_PINS) -e '.[gpubench]'
	$(BIN)/python bench/gpu.py --budget $(BUDGET)

# the fitness experiment (FITNESS.md): three corpora, three restorers, every model on every test type;
# scale up with e.g. FITNESS_ARGS="--steps 4000 --width 32 --tile 256 --batch 16 --device cuda"
FITNESS_ARGS ?=
fitness: $(VENV)/.installed
	$(BIN)/python bench/fitness.py --out out/fitness --report FITNESS.md $(FITNESS_ARGS)

clean:
	rm -rf out .pytest_cache .hypothesis
