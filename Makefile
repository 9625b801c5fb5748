# nbdeploy — the two commands: `make lab` and `make test` (plus `make demo` and `make bench`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nbdeploy-installed
UV := $(VENV)/bin/uv
# Every install is pinned by the lock (pip-compile format, used as constraints, build tools included).
LOCK := requirements-lock.txt
LOCK_EXTRAS := --extra test --extra models --extra bench --extra s3 --extra postgres --extra dev
UV_VERSION := $(shell sed -n 's/^uv==//p' $(LOCK))
PYTEST_ARGS ?=
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install kernelspecs test test-binder test-latest lint lab demo bench clean lock types check-types

# uv (from the lock) installs everything else, several times faster than pip.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "uv==$(UV_VERSION)"

# Editable install with the test extras, pinned by the lock; the hatch build hook builds the lab extension.
$(STAMP): $(PY) pyproject.toml $(LOCK) $(wildcard js/package.json js/package-lock.json)
	@# a re-install would trip over the link `labextension develop` left (uv will not replace it)
	@if [ -L $(VENV)/share/jupyter/labextensions/nbdeploy ]; then rm $(VENV)/share/jupyter/labextensions/nbdeploy; fi
	@# --compile-bytecode: every kernel, worker, server and CLI process the suite starts imports this stack; where
	@# PYTHONDONTWRITEBYTECODE is set (it is on this project's machines) each would compile it from source again
	@# (≈ 3 CPU-s per process)
	$(UV) pip install -q --compile-bytecode --python $(PY) -c $(LOCK) --build-constraint $(LOCK) -e ".[test,models]"
	$(PY) -m compileall -q -j 0 python/nbdeploy >/dev/null
	$(MAKE) kernelspecs
	touch $(STAMP)

# The wheel ships the nbdeploy kernelspecs (shared-data); an editable install does not: install them into the venv.
KERNELSPECS := $(wildcard python/nbdeploy/kernels/kernelspecs/*)
kernelspecs: $(PY)
	@for k in $(KERNELSPECS); do $(PY) -m jupyter kernelspec install --sys-prefix --replace "$$k" >/dev/null || exit 1; done

# Refresh the lock from pyproject.toml's ranges (then commit requirements-lock.txt).
lock: $(PY)
	$(UV) pip compile -q pyproject.toml $(LOCK_EXTRAS) --python-version 3.11 --no-header --upgrade -o $(LOCK)

# Rebuild the lab extension when its sources change (the hatch hook builds it only when it is missing).
LABEXT := python/nbdeploy/labextension/package.json
JS_SRC := $(shell find js/src js/style js/schema -type f 2>/dev/null) js/package.json js/package-lock.json js/tsconfig.json
$(LABEXT): $(JS_SRC) | $(STAMP)
	cd js && npm ci --no-audit --no-fund && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm run build:prod
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m jupyter labextension develop --overwrite .

install: $(STAMP) $(LABEXT)

# The lab's TypeScript types come from the server's OpenAPI document: `python -m nbdeploy.server_extension.openapi`
# writes js/openapi.json, openapi-typescript turns it into js/src/generated/api.ts. Both are committed;
# `make types` regenerates them, `make test` fails while either is stale.
OPENAPI_JSON := js/openapi.json
OPENAPI_TS := js/src/generated/api.ts
OPENAPI_TYPESCRIPT := js/node_modules/.bin/openapi-typescript

types: install
	$(PY) -m nbdeploy.server_extension.openapi > $(OPENAPI_JSON)
	$(OPENAPI_TYPESCRIPT) $(OPENAPI_JSON) -o $(OPENAPI_TS)

check-types: install
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) -m nbdeploy.server_extension.openapi > "$$tmp/openapi.json" && \
	$(OPENAPI_TYPESCRIPT) $(OPENAPI_JSON) -o "$$tmp/api.ts" >/dev/null 2>&1 && \
	stale=0 && \
	{ diff -u $(OPENAPI_JSON) "$$tmp/openapi.json" >"$$tmp/json.diff" || { stale=1; \
	  echo "$(OPENAPI_JSON) is not what the server's declarations give: run \`make types\` and commit it"; \
	  head -40 "$$tmp/json.diff"; }; } && \
	{ diff -u $(OPENAPI_TS) "$$tmp/api.ts" >"$$tmp/ts.diff" || { stale=1; \
	  echo "$(OPENAPI_TS) is not what openapi-typescript makes of $(OPENAPI_JSON): run \`make types\` and commit it"; \
	  head -40 "$$tmp/ts.diff"; }; } && \
	exit $$stale

lint: install
	$(VENV)/bin/ruff check python tests benchmarks scripts examples
	$(VENV)/bin/ruff format --check python tests benchmarks scripts examples
	$(VENV)/bin/mypy

test: install lint check-types
	cd js && npx jest --ci
	bash scripts/system-deps.sh
	bash scripts/with-postgres.sh $(PY) -m pytest -n 2 --dist loadfile -p no:cacheprovider -rfEs --tb=short $(PYTEST_ARGS)
	$(MAKE) test-binder

# Binder without repo2docker (no container runtime here): binder/postBuild builds a clean venv (uv from the lock,
# reusing its cache and the built lab extension), then every example notebook runs with `jupyter nbconvert --execute`
# under binder/start. The examples are executed here only (the main pytest run skips tests/test_binder.py).
test-binder: install
	NBDEPLOY_TEST_BINDER=1 $(PY) -m pytest tests/test_binder.py -p no:cacheprovider -rfEs --tb=short

# The same suite against the newest releases the ranges allow, in a venv of its own, to catch the next drift.
test-latest: install
	rm -rf .venv-latest && $(PYTHON) -m venv .venv-latest
	$(UV) pip install -q --python .venv-latest/bin/python --upgrade -e ".[test,models]"
	bash scripts/system-deps.sh
	bash scripts/with-postgres.sh .venv-latest/bin/python -m pytest -n 2 --dist loadfile -p no:cacheprovider -rfEs --tb=short $(PYTEST_ARGS)

lab: install
	$(PY) scripts/lab.py

demo: install
	$(PY) scripts/demo.py

bench: install
	$(UV) pip install -q --python $(PY) -c $(LOCK) --build-constraint $(LOCK) -e ".[test,models,bench]"
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-latest js/node_modules js/lib python/nbdeploy/labextension .pytest_cache .ruff_cache
