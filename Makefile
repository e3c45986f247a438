# Two commands do all set-up: `make demo` runs the main job on the embedded default, `make test`
# runs the tests. Each creates .venv here if it is missing and installs pxnas into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pxnas-installed
DEMO := build/demo

.PHONY: demo test

# constraints.txt holds the exact tested versions; pyproject.toml only ranges.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,tflite]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

demo: $(STAMP)
	mkdir -p $(DEMO)
	$(BIN)/pxprof measure --device cpu --space tiny -o $(DEMO)/cpu-tiny.csv --resume
	$(BIN)/pxprof show $(DEMO)/cpu-tiny.csv
	test -e $(DEMO)/cpu-tiny.predictor.json || $(BIN)/pxprof fit-predictor \
		--table $(DEMO)/cpu-tiny.csv -o $(DEMO)/cpu-tiny.predictor.json --calibrate-on cpu --networks 10
	rm -rf $(DEMO)/validate
	$(BIN)/pxprof validate --device cpu --table $(DEMO)/cpu-tiny.csv \
		--predictor $(DEMO)/cpu-tiny.predictor.json --networks 10 -o $(DEMO)/validate
	$(BIN)/pxsearch --latency-table $(DEMO)/cpu-tiny.csv --predictor $(DEMO)/cpu-tiny.predictor.json \
		--target-latency 40% \
		--measure-on cpu -o $(DEMO)/search --resume
