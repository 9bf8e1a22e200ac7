# Every target builds its own virtualenv on first use: a fresh clone needs only python3 >= 3.11.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
#: pytest-xdist workers of `make test` (each has its own Redis database and PostgreSQL role)
TEST_WORKERS ?= 2

.PHONY: demo test fuzz check lint typecheck contracts bench serve migrate clean venv docs build

# The API reference: the public packages (pdoc also documents each one's submodules unless
# its __init__ has __all__, so those submodules are named here).
DOC_MODULES := edu_domain edu_domain.errors edu_domain.ports edu_domain.caching edu_domain.query edu_domain.model edu_domain.services edu_infra edu_infra.mail.smtp edu_infra.mail.config edu_infra.sqlalchemy.migrate edu_infra.sqlalchemy.versioning edu_infra.sqlalchemy.errors edu_infra.memory.cache edu_infra.memory.fakes edu_infra.testing '!edu_infra.migrations' '!edu_infra.__main__'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m edu_infra.demo

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --cov --cov-report=term:skip-covered --cov-report=json:coverage.json $(PYTEST_ARGS)
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
	$(PY) bench/replica.py

docs: $(STAMP)
	$(PY) -m pdoc -o docs/api $(DOC_MODULES)
	@echo "API reference: docs/api/index.html"

# The sdist and wheel, checked as PyPI would (twine check); needs only PyPI for the build deps.
build: $(STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

serve: $(STAMP)
	$(PY) -m uvicorn examples.fastapi_app.main:app --host 127.0.0.1 --port 8000

migrate: $(STAMP)
	$(PY) -m edu_infra migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage coverage.json *.db docs/api dist
