# `make run` and `make test` need nothing but Python 3.11+ on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
FLASK := $(BIN)/flask --app quote_service

.PHONY: install run test test-fast lint format clean messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The gettext catalogs: the .po files are the source, the .mo files are built
# here (and in the Dockerfile), never committed.
TRANSLATIONS := quote_service/translations
MO := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@

install: $(STAMP) $(MO)

# After changing a translatable text: extract the texts again and merge them
# into every language's .po, then translate what is new (tests/test_translations.py
# fails while a text has no translation).
messages: $(STAMP)
	$(BIN)/pybabel extract --width=100 -F babel.cfg -k _l -k lazy_gettext --no-location \
		--sort-output --project=quote-service -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update --width=100 -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) \
		--no-fuzzy-matching --ignore-obsolete

# The example form (examples/form/) is served on port 8000, which CORS_ORIGINS
# lets in unless you set CORS_ORIGINS yourself.
run: $(STAMP) $(MO)
	$(FLASK) db upgrade
	$(FLASK) seed
	LOG_FORMAT=$${LOG_FORMAT:-text} \
	CORS_ORIGINS=$${CORS_ORIGINS-http://127.0.0.1:8000,http://localhost:8000} \
		$(BIN)/python -m worker.devserver

# Two processes: most of the suite waits on workers, browsers and servers, so two
# fit two CPUs (TEST_PROCESSES=0 runs it in this process).
TEST_PROCESSES ?= 2

# Uses TEST_DATABASE_URL / TEST_REDIS_URL when they answer; otherwise the tests
# start throwaway servers (installed binaries, else the pip-installable ones).
test: $(STAMP) $(MO)
	@need="$$($(BIN)/python -m tests.support.servers --need)"; \
	if [ -n "$$need" ]; then \
		echo "no PostgreSQL/Redis here: installing $$need"; \
		$(BIN)/python -m pip install --quiet -e '.[dev,servers]'; \
	fi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist load $(PYTEST_ARGS)

# The quick lane: everything but the browser, worker-process and fault tests.
test-fast: $(STAMP) $(MO)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist load \
		-m "not (faults or browser or fuzz or bench or processes)" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache $(MO)

# Benchmarks against floors measured in the same run (docs/PERFORMANCE.md).
# They use PostgreSQL and Redis on loopback: a database and a Redis database
# of their own (BENCH_DATABASE_URL, BENCH_REDIS_URL; emptied by each run),
# and wrk, installed here from Debian's packages when missing.
.PHONY: bench bench-smoke
BENCH_ARGS ?=

define ensure_wrk
	@if ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing wrk (apt-get)"; \
			apt-get install -y -qq wrk >/dev/null 2>&1 \
				|| { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; \
		else \
			echo "wrk is missing: install it (sudo apt-get install wrk)"; exit 1; \
		fi; \
	fi
endef

# 10 to 20 minutes on 2 CPUs (with what else runs); writes docs/PERFORMANCE.md.
bench: $(STAMP)
	$(ensure_wrk)
	BENCH_COMMAND="make bench" $(BIN)/python -m bench $(BENCH_ARGS)

# Every scenario, tiny (well under a minute): proves the harness works, measures nothing.
bench-smoke: $(STAMP)
	$(ensure_wrk)
	BENCH_COMMAND="make bench-smoke" $(BIN)/python -m bench --quick \
		--json instance/bench-smoke.json $(BENCH_ARGS)
