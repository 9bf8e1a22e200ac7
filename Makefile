# Every target builds its own virtualenv on first use: a fresh clone needs only python3 >= 3.11.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test fuzz check lint typecheck contracts bench serve migrate clean venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m edu_infra.demo

test: $(STAMP)
	$(PY) -m pytest --cov --cov-report=term:skip-covered --cov-report=json:coverage.json $(PYTEST_ARGS)
	@echo "edu_domain line coverage: $$($(PY) -m coverage report --include='src/edu_domain/*' --format=total)% (required: 90%)"
	@$(PY) -m coverage report --include='src/edu_domain/*' --fail-under=90 --format=total > /dev/null

# The long schemathesis run: every phase (coverage too) and 300 examples per operation.
fuzz: $(STAMP)
	EDU_FUZZ_EXAMPLES=300 EDU_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
		$(PY) -m pytest -s -p no:cacheprovider tests/e2e/test_schemathesis.py

check: lint typecheck contracts

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run.py

serve: $(STAMP)
	$(PY) -m uvicorn examples.fastapi_app.main:app --host 127.0.0.1 --port 8000

migrate: $(STAMP)
	$(PY) -m edu_infra migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage coverage.json *.db
