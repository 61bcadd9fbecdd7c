# The two README commands. Each does all set-up itself on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU wheel by default; for CUDA: make demo TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= demo-out

.PHONY: demo test venv bench lint clean

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

lint: venv
	$(VENV)/bin/ruff check focalcli tests

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
