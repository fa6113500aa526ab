# The two commands of the README: `make run` and `make test`.

# The project targets Python 3.11; any python3 will do when 3.11 is not installed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)

.PHONY: .venv run migrate test

# ---- environment and local stack --------------------------------------------

.venv: .venv/.installed

# The stamp, not the folder, is the target: editing a requirements file reinstalls.
.venv/.installed: $(wildcard requirements*.txt)
	test -x .venv/bin/python || $(PYTHON) -m venv .venv
	.venv/bin/python -m pip install -r requirements-dev.txt
	touch $@

# Postgres, Redis, AWS (moto) and the API on http://127.0.0.1:8000; Ctrl-C stops them.
run: .venv/.installed
	.venv/bin/python -m localstack.devstack

# Applies sql/migrations to the database named by DATABASE_URL.
migrate: .venv/.installed
	.venv/bin/python -m chalicelib.migrate

# ---- tests and lint (owned by the test engineer; refine here) ----------------

test: .venv/.installed
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} .venv/bin/pytest -m "not slow"
