# The two commands of README.md: `make run` and `make test`. Both create the venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/postdesk serve

test: $(VENV)/.installed
	scripts/test-deps
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py

# Catalogues (README: Languages): extract the strings of templates and code, merge them into each .po.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k translate:2 -k translate_plural:2,3 --no-location \
		--sort-output -o locale/messages.pot .
	$(BIN)/pybabel update -i locale/messages.pot -d locale --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV) var .pytest_cache
