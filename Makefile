# Set-up and everyday commands. Everything runs in a local virtual environment (.venv),
# created and filled on first use, so a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run chat test lint typecheck kb-check ci bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "IMG Guide needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1)." >&2; \
		echo "Run: make PYTHON=python3.11 (or newer)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the bot with its test tools

run: $(STAMP)  ## run the Telegram bot (needs TELEGRAM_BOT_TOKEN)
	$(PY) -m bot run

chat: $(STAMP)  ## talk to the bot in the terminal (no token needed)
	$(PY) -m bot chat

test: $(STAMP)  ## run the whole test suite
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy bot handlers

kb-check: $(STAMP)  ## validate the knowledge base
	$(PY) -m bot check knowledge

ci: test lint typecheck kb-check

bench: $(STAMP)  ## run the benchmarks (see benchmarks/README.md)
	$(PY) -m benchmarks.quality
	$(PY) -m benchmarks.speed
	$(PY) -m benchmarks.throughput
	$(PY) -m benchmarks.store_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
