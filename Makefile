# Two commands matter: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test chaos bench report robustness camouflage lint fmt clean infra-up infra-down chromium
.PHONY: redis-server docker-compose kafka

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/distillguard demo

test: $(STAMP) chromium redis-server docker-compose kafka
	$(BIN)/ruff check .
	$(BIN)/python scripts/typecheck.py
	$(BIN)/python -m pytest -m "not chaos" --durations=15

# Crash recovery: twenty SIGKILLs over a 220k-event run must change no result (~4 min).
# CI runs it after the suite.
chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos -p no:randomly

# The browser test drives Debian's Chromium (never a Playwright download).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# The suite's second stack: Debian's Redis next to the embedded Valkey ...
redis-server:
	command -v redis-server >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)

# ... and Apache Kafka (KRaft), whose jars Maven resolves once into .distillguard/kafka/
# (Java 17 and Maven are on the machine; installed here only where they are not).
kafka: $(STAMP)
	(command -v java >/dev/null && command -v mvn >/dev/null) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven)
	$(BIN)/python -m distillguard.kafka_broker

# `docker-compose config` validates docker-compose.yml in the suite (no daemon needed).
docker-compose:
	command -v docker-compose >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Re-run the default-scenario evaluation and splice its table into README.md.
report: $(STAMP)
	$(BIN)/python scripts/refresh_report.py

# Re-run the held-out protocol (configs/protocol.yaml) and splice its robustness matrix
# into README.md.
robustness: $(STAMP)
	$(BIN)/python scripts/refresh_report.py --robustness

# What camouflage (padding, borrowed cards and addresses) buys: paired runs, held-out seed.
camouflage: $(STAMP)
	$(BIN)/python scripts/measure_camouflage.py

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
