# Every target builds its own virtualenv on first use: a fresh clone needs only python3 >= 3.11.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
#: pytest-xdist workers of `make test` (each has its own Redis database and PostgreSQL role)
TEST_WORKERS ?= 2

.PHONY: demo test fuzz mutate check lint typecheck contracts bench bench-scale serve migrate clean venv docs build

# The API reference: the public packages (pdoc also documents each one's submodules unless
# its __init__ has __all__, so those submodules are named here).
DOC_MODULES := edu_domain edu_domain.errors edu_domain.ports edu_domain.caching edu_domain.query edu_domain.model edu_domain.services edu_infra edu_infra.mail.smtp edu_infra.mail.config edu_infra.sqlalchemy.migrate edu_infra.sqlalchemy.versioning edu_infra.sqlalchemy.errors edu_infra.outbox edu_infra.memory.cache edu_infra.memory.fakes edu_infra.testing '!edu_infra.migrations' '!edu_infra.__main__'

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

# Mutation testing (docs/mutation.md): make mutate [MUTATE='guard uow cache'] [MUTANTS=globs].
# mutmut mutates the files of [tool.mutmut] only_mutate (pyproject.toml); MUTANTS picks the
# mutants that run, as globs of their names: `module.function__mutmut_N`, for a method
# `module.xǁClassǁmethod__mutmut_N`. To add a module: its path to only_mutate, its glob below.
# Each run starts afresh (mutants/ is rebuilt); two workers run in parallel, so each test
# session starts its own redis-server.
mutants_guard := edu_infra.sqlalchemy.guard.* edu_domain.visibility.*
mutants_uow   := edu_infra.memory.uow.* edu_domain.uow_checks.* edu_infra.sqlalchemy.changes.* \
	edu_infra.sqlalchemy.identity.* edu_infra.sqlalchemy.transaction.*
# read_through.py and redis/cache.py: only their invalidation parts (generations, epochs,
# fencing, delivery), not single flight, locks, TTLs or the rest of the Cache port.
read_through_invalidation := tenant_tag namespace_generation_key item_generation_key \
	generation_keys storage_key storage_base _fetch _fenced invalidate invalidate_namespace \
	apply _settle aclose _deliver _generation_key
redis_invalidation := get_versioned _get_versioned_plainly _epoch_of _no_epoch set set_many
mutants_cache := edu_infra.caching.invalidation.* edu_infra.caching.keys.* \
	edu_infra.caching.pending.* edu_infra.redis.scripts.* \
	$(foreach f,$(read_through_invalidation),edu_infra.caching.read_through.xǁReadThroughCacheǁ$(f)__mutmut_*) \
	$(foreach f,$(redis_invalidation),edu_infra.redis.cache.xǁRedisCacheǁ$(f)__mutmut_*)
MUTATE  ?= guard uow cache
MUTANTS ?= $(foreach t,$(MUTATE),$(mutants_$(t)))

mutate: $(STAMP)
	$(PY) -m pip install --quiet -e '.[mutate]'
	rm -rf mutants
	EDU_TEST_OWN_REDIS=1 HYPOTHESIS_PROFILE=mutation \
		$(VENV)/bin/mutmut run $(foreach m,$(MUTANTS),'$(m)')
	$(PY) tests/mutation_summary.py $(foreach m,$(MUTANTS),'$(m)')

check: lint typecheck contracts

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

# bench/run.py: every operation against the `limit` contender and the peers, the tail-latency
# loop and the memory jobs (bench/README.md); then the read-replica run. About 5 minutes.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run.py
	$(PY) bench/replica.py

# Scale curves: get / page / count / statistics at 1k-100k users per organization and with
# 10 vs 1,000 organizations, right after an import and after ANALYZE (bench/results/scale.json).
bench-scale: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/scale.py

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
	rm -rf $(VENV) mutants .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage coverage.json *.db docs/api dist
