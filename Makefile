# Each target sets up its own environment, so a fresh clone needs only Python 3.10+ and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch/torchvision pinned to the releases this workplace serves from disk (a CUDA build on x86_64).
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test lint format fashion-mnist clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[train,test,hf,lightning]'
	touch $@

venv: $(VENV)/.installed

# The score stage on the default dataset, its image statistics, then the curriculum stage with
# Hacohen & Weinshall's exp pacing (its stage length derived from the budget: all data open by half of it).
demo: venv
	$(VENV)/bin/curriculum score --dataset digits
	$(VENV)/bin/curriculum stats --dataset digits
	$(VENV)/bin/curriculum train --dataset digits --pacing exp

# One pytest worker per usable core (at most 4; each test's processes compute on one thread),
# whole files to a worker so that a file's shared runs are made once.
WORKERS ?= $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print(max(1, min(4, n or 1)))")

test: venv
	$(PY) -m pytest -q -n $(WORKERS) --dist loadfile tests

# The formatter and linter settle style (settings in pyproject.toml); `make format` applies them.
lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The real Fashion-MNIST (Debian's dataset-fashion-mnist, as root) for --data-dir and the tests that read it.
fashion-mnist:
	apt-get install -y dataset-fashion-mnist

clean:
	rm -rf $(VENV) runs .cache
