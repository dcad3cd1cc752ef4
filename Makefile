# Two commands matter: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench report lint fmt clean infra-up infra-down chromium

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/distillguard demo

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/python scripts/typecheck.py
	$(BIN)/python -m pytest

# The browser test drives Debian's Chromium (never a Playwright download).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Re-run the default-scenario evaluation and splice its table into README.md.
report: $(STAMP)
	$(BIN)/python scripts/refresh_report.py

# ruff, then mypy (scripts/typecheck.py: mypy over the package-dir mapping, see [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck.py

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

infra-up: $(STAMP)
	$(BIN)/distillguard infra up

infra-down: $(STAMP)
	$(BIN)/distillguard infra down

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .distillguard
