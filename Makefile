# The README's two commands, and the long path of a GPU box. Each creates .venv (if missing) and
# installs the package first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Installs pin every package to the tested version (requirements.lock, as pip constraints);
# LOCK= (empty) installs the newest versions pyproject.toml allows instead.
LOCK ?= requirements.lock
# The profile of `make book`, `make run` and `make rehearse`: PROFILE=..., else $BOOK_PROFILE, else smoke.
PROFILE ?= $(or $(BOOK_PROFILE),smoke)
# Each profile builds into its own folder, with its own execution cache: builds never mix.
BUILD = _build/$(PROFILE)

.PHONY: book run rehearse student test unit notebooks build-strict site clean lock gpu-bench

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(if $(LOCK),-c $(LOCK)) -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $(STAMP)

# Execute every chapter in $(PROFILE) and render HTML into _build/<profile>/_build/html.
# smoke and course run their steps inside the chapters; paper renders what `make run` finished.
book: $(STAMP)
	BOOK_PROFILE=$(PROFILE) $(VENV)/bin/jupyter-book build . --path-output $(BUILD)
	@echo "open $(BUILD)/_build/html/index.html"

# Every step of the book in order (resumable; torchrun over the GPUs where a step uses several).
run: $(STAMP)
	BOOK_PROFILE=$(PROFILE) $(PY) -m helpers run --profile $(PROFILE)

# The real profile, offline, against stand-ins at the real addresses (COCO mirror on 127.0.0.1,
# a model-hub cache under the real ids); FULL_SIZE=1 builds the stand-ins at the real sizes (GPU).
rehearse: $(STAMP)
	$(PY) -m helpers.rehearsal run $(PROFILE) $(if $(FULL_SIZE),--full-size)

# The students' copy: the chapters without their {solution} blocks and outputs, with _config.yml,
# _toc.yml and book/, in student/ (python -m helpers.book.student), then its HTML build in
# student/_build/html (the chapters run again in $(PROFILE)). Hand out either.
student: $(STAMP)
	$(PY) -m helpers.book.student
	BOOK_PROFILE=$(PROFILE) $(VENV)/bin/jupyter-book build student
	@echo "open student/_build/html/index.html"

# The package's layers (import-linter's contract in pyproject.toml), unit tests, a book build with
# warnings as errors (smoke), and that build opened page by page in headless Chromium (screenshots
# in _build/screenshots/; SKIP_BROWSER=1 on a machine without it). Each chapter runs once: the strict
# build executes it in a fresh kernel and fails on any cell's error, with its traceback in the log
# and in _build/smoke/_build/html/reports/ (what nbval's --nbval-lax checked, since no cell of the
# book compares its output); `make notebooks` still runs nbval, for a report cell by cell.
test: unit build-strict site

unit: $(STAMP)
	$(VENV)/bin/lint-imports
	BOOK_PROFILE=smoke $(PY) -m pytest tests

notebooks: $(STAMP)
	BOOK_PROFILE=smoke $(PY) -m pytest --nbval-lax notebooks

# A fresh build: the execution cache of an earlier build would let a chapter pass without running.
build-strict: $(STAMP)
	rm -rf _build/smoke
	BOOK_PROFILE=smoke $(VENV)/bin/jupyter-book build . --path-output _build/smoke --warningiserror --keep-going

# Issue 14's speed figures on this machine: ConvNeXt-XL training, SD 2.0 generation, scoring, data
# loading, at full size on random weights on a GPU (under 8 minutes), tiny stand-ins on a CPU;
# writes results/bench/<device>.json (copy it to book/measured/bench/ to show it in the book).
gpu-bench: $(STAMP)
	$(PY) -m helpers bench all

# Refresh requirements.lock and environment.yml: a scratch environment gets the newest versions
# pyproject.toml allows, and its pip freeze becomes the lock (tools/lock.py). Then run `make test`.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --upgrade pip
	.venv-lock/bin/python -m pip install -e ".[dev]"
	$(PYTHON) tools/lock.py .venv-lock/bin/python
	rm -rf .venv-lock

site: $(STAMP)
	$(if $(SKIP_BROWSER),@echo "site test skipped (SKIP_BROWSER=1)",BOOK_SITE=_build/smoke/_build/html $(PY) -m pytest tests_site)

clean:
	rm -rf _build
