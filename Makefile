# `make run` and `make test` need nothing but Python 3.11+ on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
FLASK := $(BIN)/flask --app quote_service

.PHONY: install run test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) seed
	$(BIN)/python -m worker.devserver

# Uses TEST_DATABASE_URL / TEST_REDIS_URL when they answer; otherwise the tests
# start throwaway servers (installed binaries, else the pip-installable ones).
test: $(STAMP)
	@need="$$($(BIN)/python -m tests.support.servers --need)"; \
	if [ -n "$$need" ]; then \
		echo "no PostgreSQL/Redis here: installing $$need"; \
		$(BIN)/python -m pip install --quiet -e '.[dev,servers]'; \
	fi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
