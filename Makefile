# Two commands do all set-up: `make demo` runs the main job on the embedded default, `make test`
# runs the tests. Each creates .venv here if it is missing and installs pxnas into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pxnas-installed
DEMO := build/demo

.PHONY: demo test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,tflite]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	mkdir -p $(DEMO)
	$(BIN)/pxprof measure --device cpu --space tiny -o $(DEMO)/cpu-tiny.csv --resume
	$(BIN)/pxprof show $(DEMO)/cpu-tiny.csv
	$(BIN)/pxsearch --latency-table $(DEMO)/cpu-tiny.csv --target-latency 40% --measure-on cpu \
		-o $(DEMO)/search --resume
