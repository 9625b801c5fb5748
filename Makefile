# nbdeploy — the two commands: `make lab` and `make test` (plus `make demo` and `make bench`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nbdeploy-installed
PYTEST_ARGS ?=
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install test lint lab demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Editable install with the test extras; the hatch build hook builds the lab extension from js/.
$(STAMP): $(PY) pyproject.toml $(wildcard js/package.json js/package-lock.json)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# Rebuild the lab extension when its sources change (the hatch hook builds it only when it is missing).
LABEXT := python/nbdeploy/labextension/package.json
JS_SRC := $(shell find js/src js/style js/schema -type f 2>/dev/null) js/package.json js/package-lock.json js/tsconfig.json
$(LABEXT): $(JS_SRC) | $(STAMP)
	cd js && npm ci --no-audit --no-fund && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm run build:prod
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m jupyter labextension develop --overwrite .

install: $(STAMP) $(LABEXT)

lint: install
	$(VENV)/bin/ruff check python tests benchmarks scripts examples
	$(VENV)/bin/ruff format --check python tests benchmarks scripts examples

test: install lint
	cd js && npx jest --ci
	bash scripts/system-deps.sh
	bash scripts/with-postgres.sh $(PY) -m pytest -n 2 --dist loadfile -p no:cacheprovider -rs $(PYTEST_ARGS)

lab: install
	$(PY) scripts/lab.py

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) -m pip install -q -e ".[test,bench]"
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) js/node_modules js/lib python/nbdeploy/labextension .pytest_cache .ruff_cache
