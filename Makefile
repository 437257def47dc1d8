# One command installs and runs the main job (`make train`: MT-PPO on MT10 with the CPU defaults, about an
# hour on 2 cores, ending with the per-task table), one installs and runs the tests (`make test`).
# Both create .venv from pyproject.toml.
VENV_PY := .venv/bin/python
STAMP := .venv/.installed

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(VENV_PY) -m pip install -q --upgrade pip
	$(VENV_PY) -m pip install -q torch==2.13.0
	$(VENV_PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

.PHONY: install play train test test-slow lint bench reference gpu-check wheelhouse offline-install
install: $(STAMP)

play: $(STAMP)
	.venv/bin/mtbench play task=mt10 policy=expert

train: $(STAMP)
	.venv/bin/mtbench train task=mt10

# the suite runs on one pytest-xdist worker per core, a test file per worker (module fixtures are built once)
test: $(STAMP)
	.venv/bin/ruff check mtbench tests tools
	$(VENV_PY) -m pytest -q -n auto --dist loadfile

test-slow: $(STAMP)
	$(VENV_PY) -m pytest -q -m slow -n auto --dist loadfile

lint: $(STAMP)
	.venv/bin/ruff check mtbench tests tools

bench: $(STAMP)
	.venv/bin/mtbench bench env

reference:
	python3 tools/record_reference.py

# The CUDA path in one command (README "GPU check"): proves and measures it in about 8 minutes on one GPU and writes
# gpu_check/report.md. On a machine without this .venv (a GPU machine set up by `make offline-install`) it uses
# python3. ARGS passes options, e.g. make gpu-check ARGS="dry_run=True" (toy sizes on the CPU).
GPU_PY ?= $(if $(wildcard $(VENV_PY)),$(VENV_PY),python3)
gpu-check:
	$(GPU_PY) -m mtbench.cli bench gpu $(ARGS)

# An offline install for air-gapped GPU machines (README "Offline install"): `make wheelhouse PY=3.12` gathers the
# wheels of every dependency but torch for CPython $(PY) on manylinux $(ARCH), in parts of at most $(PART_MB) MiB in
# $(WHEELHOUSE)/; on the GPU machine `make offline-install` reassembles and installs them into $(OFFLINE_PY), against
# the torch already there. EXCLUDE="scipy pandas ..." leaves out packages the GPU machine already has.
PY ?= 3.12
ARCH ?= x86_64
PART_MB ?= 50
WHEELHOUSE ?= wheelhouse
OFFLINE_PY ?= python3
EXCLUDE ?=
wheelhouse: $(STAMP)
	$(VENV_PY) tools/wheelhouse.py build --python $(PY) --arch $(ARCH) --part-mb $(PART_MB) --out $(WHEELHOUSE) \
		$(if $(EXCLUDE),--exclude $(EXCLUDE))

offline-install:
	$(OFFLINE_PY) tools/wheelhouse.py install --dir $(WHEELHOUSE)
