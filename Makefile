# The two README commands. Each does all set-up itself on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU wheel by default; for CUDA: make demo TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= demo-out

.PHONY: demo test venv bench lint clean gpu-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	@mkdir -p $(DEMO_OUT)
	$(VENV)/bin/focal info examples/beetle
	$(VENV)/bin/focal predict examples/beetle -o $(DEMO_OUT)/depth.png --aif $(DEMO_OUT)/aif.jpg \
		--confidence $(DEMO_OUT)/confidence.png --preview --overwrite
	@echo "demo outputs: $(DEMO_OUT)/depth.png (16-bit), $(DEMO_OUT)/depth_preview.png, $(DEMO_OUT)/aif.jpg, $(DEMO_OUT)/confidence.png"

test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) -m focalcli.bench predict

# GPU checks (see README, "GPU"): the whole suite with the `gpu` tests, then the GPU benchmarks, each under a time
# limit; about 8 minutes at most on one H100. Needs a CUDA build of torch in $(PY) (e.g. make venv
# TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"), or PY=... for another interpreter.
GPU_BENCH := $(PY) -m focalcli.bench
gpu-check: $(if $(filter $(VENV)/bin/python,$(PY)),venv)
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
		f'gpu-check: torch {torch.__version__} in $(PY) sees no CUDA device')"
	timeout 215 $(PY) -m pytest -q -m "not slow" -p no:cacheprovider
	timeout 45 $(GPU_BENCH) models --device cuda --precision bf16 --sizes 384 --frames 10 --repeats 20
	timeout 130 $(GPU_BENCH) models --device cuda --precision bf16 --sizes 384 --frames 10 --repeats 50 \
		--no-compare --compile auto --presets focdepthformer-tiny,focdepthformer-base
	timeout 30 $(GPU_BENCH) synth --device cuda --batch 32 --size 256x256 --frames 8 --virtual-width 1024 --repeat 5
	timeout 60 $(GPU_BENCH) train --device cuda --model focdepthformer-small --crop 256 --batch-size 16 --frames 8 \
		--steps 4 --virtual-width 1024 --cpu-samples 8

lint: venv
	$(VENV)/bin/ruff check focalcli tests

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
