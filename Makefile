# Two commands: `make run` and `make test`. Both create the virtual environment on first
# use (and again when pyproject.toml changes), so a fresh clone needs nothing else.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RAY    := $(VENV)/.ray-installed
PGDRV  := $(VENV)/.postgres-installed

.PHONY: setup browser fonts office postgres run test test-latest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# eqexp's own modules compiled to bytecode once (an editable install has none, and a shell
# with PYTHONDONTWRITEBYTECODE set never writes them): each start then skips compiling them.
setup: $(STAMP)
	@$(PY) -m compileall -q src run.py >/dev/null

# Ray and its Hydra launcher, for the test that runs a sweep on a local Ray instance.
# hydra-ray-launcher 1.2.2 pins cloudpickle<3 while joblib 1.6 needs >=3, so pip cannot
# resolve it: it is installed without its pins (it runs on cloudpickle 3; the test checks).
$(RAY): $(STAMP)
	$(PY) -m pip install --quiet -e ".[ray]"
	$(PY) -m pip install --quiet --no-deps hydra-ray-launcher==1.2.2
	touch $(RAY)

# Debian's Chromium, for the test that opens the MLflow UI as a person would (Playwright
# drives /usr/bin/chromium; nothing is downloaded). Needs root or sudo the first time.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Debian's Noto CJK fonts, so that figures draw Chinese labels (report=zh, your own) instead of empty
# boxes. Needs root or sudo the first time; `make run` goes on without them (figures then warn).
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
fonts:
	@test -f $(CJK_FONT) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null)

# LibreOffice's Writer (headless) and poppler's pdftotext, for the test that opens the Word tables
# as a reader would: converted to PDF by another program than the one that wrote them.
office:
	@(command -v soffice && command -v pdftotext) >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libreoffice-writer-nogui poppler-utils >/dev/null)

# Debian's PostgreSQL server and its Python driver, for the tests of a shared MLflow store (a
# database, and MLflow's tracking server in front of it). The tests start their own server on a
# free local port in a temporary directory (as the postgres user when run as root) and stop it.
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

$(PGDRV): $(STAMP)
	$(PY) -m pip install --quiet -e ".[postgres]"
	touch $(PGDRV)

run: setup
	@$(MAKE) --no-print-directory fonts || echo "[eqexp] fonts-noto-cjk not installed (needs root): Chinese labels in figures will be boxes"
	$(PY) run.py

# Two test files at a time (pytest-xdist): most tests use one core, and a file's module
# fixtures (a built panel, a sweep) stay in one process. 575 tests: 9 min against 12.6 serially.
# Then the numerics tests again with every test panel's rows shuffled (tests/numerics.py): every
# sum in another order, as on another CPU; every comparison and p-value must hold both ways.
test: setup browser fonts office $(RAY) postgres $(PGDRV)
	$(PY) -m pytest -q -ra -n 2 --dist loadfile
	EQEXP_TEST_SHUFFLE=20261208 $(PY) -m pytest -q -ra -n 2 --dist loadfile -m numerics

# The upgrade canary: a second environment with the newest hydra-core, omegaconf, mlflow, pyfixest,
# pandas and numpy (pip warns that they break eqexp's pins: that is the point), and the suite with
# DeprecationWarning and FutureWarning as errors when eqexp's own modules trigger them (tests/conftest.py,
# EQEXP_CANARY). CI keeps the pinned set (`make test`).
LATEST := .venv-latest
test-latest: browser postgres
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet -e ".[dev,postgres,ray]"
	$(LATEST)/bin/python -m pip install --quiet --no-deps hydra-ray-launcher==1.2.2
	-$(LATEST)/bin/python -m pip install --quiet --upgrade hydra-core omegaconf mlflow pyfixest pandas numpy
	$(LATEST)/bin/python -m pip list 2>/dev/null | grep -iE "^(hydra-core|omegaconf|mlflow|pyfixest|pandas|numpy) "
	EQEXP_CANARY=1 $(LATEST)/bin/python -m pytest -q -ra -n 2 --dist loadfile

bench: setup
	$(PY) benchmarks/bench_study.py

clean:
	rm -rf outputs .pytest_cache $(LATEST)
