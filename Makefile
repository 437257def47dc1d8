# One command installs and runs the main job (`make train`: MT-PPO on MT10 with the CPU defaults, about an
# hour on 2 cores, ending with the per-task table), one installs and runs the tests (`make test`).
# Both create .venv from pyproject.toml.
PY := .venv/bin/python
STAMP := .venv/.installed

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

.PHONY: install play train test test-slow lint bench reference
install: $(STAMP)

play: $(STAMP)
	.venv/bin/mtbench play task=mt10 policy=expert

train: $(STAMP)
	.venv/bin/mtbench train task=mt10

# the suite runs on one pytest-xdist worker per core, a test file per worker (module fixtures are built once)
test: $(STAMP)
	.venv/bin/ruff check mtbench tests tools
	$(PY) -m pytest -q -n auto --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -n auto --dist loadfile

lint: $(STAMP)
	.venv/bin/ruff check mtbench tests tools

bench: $(STAMP)
	.venv/bin/mtbench bench env

reference:
	python3 tools/record_reference.py
