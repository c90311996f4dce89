# The README's two commands. Both create .venv (if missing) and install the package first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test unit notebooks build-strict clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $(STAMP)

# Execute every chapter in the default profile ($$BOOK_PROFILE, else smoke) and render HTML.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build .
	@echo "open _build/html/index.html"

# Unit tests, every chapter through nbval, and a book build with warnings as errors.
test: unit notebooks build-strict

unit: $(STAMP)
	$(PY) -m pytest tests

notebooks: $(STAMP)
	$(PY) -m pytest --nbval-lax notebooks

build-strict: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going

clean:
	rm -rf _build
