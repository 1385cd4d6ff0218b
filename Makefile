# PokeWatch: `make run` serves a local demo, `make test` runs the whole suite.
# Both set everything up on a fresh clone (virtual environment, dependencies, database).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck lock check-lock bench setup clean tools k8s-validate

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap --port $(PORT)

# The web server in the foreground; a Celery worker with the beat schedule beside it
# (embedded broker unless REDIS_URL is set), stopped when the server stops. Both log to
# this terminal.
run: setup
	@$(PY) manage.py schedule
	@$(VENV)/bin/celery -A pokewatch_site worker --beat --concurrency 1 --loglevel info \
		--schedule var/celerybeat-schedule & \
	worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	echo "PokeWatch on http://127.0.0.1:$(PORT)/  (health: http://127.0.0.1:$(PORT)/api/v1/health/)"; \
	$(PY) manage.py runserver --noreload 127.0.0.1:$(PORT)

test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

# uv.lock: every dependency and extra pinned with hashes, for every platform; requirements.lock:
# its runtime part, which the image installs. Run `make lock` after editing the dependencies
# in pyproject.toml (`uv lock --upgrade` moves every pin to the newest allowed release).
EXPORT_LOCK := $(VENV)/bin/uv export --frozen --no-dev --no-emit-project --format requirements-txt --quiet

lock: $(STAMP)
	$(VENV)/bin/uv lock
	$(EXPORT_LOCK) > requirements.lock

# Offline: fails if pyproject.toml changed without `make lock`, or requirements.lock was edited.
check-lock: $(STAMP)
	$(VENV)/bin/uv lock --check --offline
	$(EXPORT_LOCK) | diff -u requirements.lock - \
		|| { echo "requirements.lock is not uv.lock's export: run make lock" >&2; exit 1; }

# Benchmarks need DATABASE_URL (PostgreSQL); the API one also REDIS_URL and wrk. The
# defaults are the quick sizes; docs/benchmarks.md gives the commands behind its figures.
bench: $(STAMP)
	$(PY) -m benchmarks.ingestion $(BENCH_ARGS)
	$(PY) -m benchmarks.tcgcsv $(BENCH_TCGCSV_ARGS)
	$(PY) -m benchmarks.pipeline $(BENCH_PIPELINE_ARGS)
	$(PY) -m benchmarks.prices_table $(or $(BENCH_PRICES_TABLE_ARGS),--cards 5000 --days 365)
	$(PY) -m benchmarks.api $(BENCH_API_ARGS)
	$(PY) -m benchmarks.capacity $(BENCH_CAPACITY_ARGS)

# Tools kept out of the project's environment and lock: checkov (and its ~100 pinned
# dependencies, with hashes) in a virtual environment of their own, ignored by git.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
TOOLS_REQUIREMENTS := deploy/k8s/tools/requirements.txt

$(TOOLS_STAMP): $(TOOLS_REQUIREMENTS)
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	@echo '*' > $(TOOLS_VENV)/.gitignore
	$(TOOLS_VENV)/bin/python -m pip install --quiet --no-deps --require-hashes -r $(TOOLS_REQUIREMENTS)
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

# The Kubernetes manifests, offline: each overlay rendered by `kubectl kustomize`, checked
# against the API's schemas (kubernetes-validate, dev extra) and by checkov (.venv-tools).
k8s-validate: $(STAMP) $(TOOLS_STAMP)
	KUBERNETES_VALIDATE=$(VENV)/bin/kubernetes-validate CHECKOV=$(TOOLS_VENV)/bin/checkov \
		deploy/k8s/validate

clean:
	rm -rf $(VENV) $(TOOLS_VENV) var
