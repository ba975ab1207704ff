#!/usr/bin/env bash
# dr-drill set-up: everything `pytest -m drill` and `pytest` need on a Debian machine with
# Python 3.11 and Node 20. Idempotent: a second run only checks, and takes a few seconds.
#   - MariaDB server + client (apt)            — the lab's RDS / Azure MySQL
#   - Redis server (apt)                       — the goupang lab's session store
#   - Azurite 3.35.0 (npm, into .tools/)       — the lab's Azure Blob Storage (3.36+ needs Node 22)
#   - Allure 2.46.1 (npm allure-commandline, into .tools/; runs on the Java 17 here) — `drill report`
#   - Prometheus Alertmanager + Pushgateway (apt) — real ones for the stop-condition and results-push
#     tests (started on free ports with temporary configs by those tests, never as services)
#   - Chromium (apt, if the distribution has it) — only for the test that renders the HTML report
#   - the Python package and its pinned deps   — into .venv/, this checkout's own virtual environment,
#     with the dev tools (zizmor: the workflow's static analysis; ruff and mypy: ./check), run by `pytest`
#
# Each checkout gets its own .venv (editable install of *this* checkout): setting up a second clone
# on the same machine never repoints the first one's `drill`, `pytest` plugin or dependencies.
# Afterwards: `. .venv/bin/activate` (or call .venv/bin/pytest, .venv/bin/drill directly).
set -euo pipefail
cd "$(dirname "$0")"
BASE_PY=${PYTHON:-python3}
VENV=.venv
PY=$VENV/bin/python
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/sbin/mariadbd ] && ! command -v mariadbd >/dev/null 2>&1 || ! command -v mysqldump >/dev/null 2>&1; then
  say "installing MariaDB (apt)"
  as_root apt-get update -qq
  # The package's own service start is not wanted: the lab runs its own servers on free ports.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mariadb-server mariadb-client >/dev/null
else
  say "MariaDB present"
fi

# Debian's Alertmanager and Pushgateway: the tests start their own (free port, temp config); the
# packages' services are not wanted (a container's policy-rc.d usually keeps them from starting).
if ! command -v prometheus-alertmanager >/dev/null 2>&1 || ! command -v prometheus-pushgateway >/dev/null 2>&1; then
  say "installing Prometheus Alertmanager and Pushgateway (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus-alertmanager prometheus-pushgateway >/dev/null
else
  say "Prometheus Alertmanager and Pushgateway present"
fi

# DRILL_TOOLS_FROM=<another checkout's .tools>: start from a copy of it instead of downloading (CI,
# a second clone). Hard links where the file system allows: no second download, and deleting either
# checkout leaves the other whole. The version checks below still decide what npm must add.
if [ -n "${DRILL_TOOLS_FROM:-}" ] && [ ! -e .tools ]; then
  if [ -d "$DRILL_TOOLS_FROM/node_modules" ]; then
    say "copying .tools from $DRILL_TOOLS_FROM"
    cp -al "$DRILL_TOOLS_FROM" .tools 2>/dev/null || { rm -rf .tools; cp -a "$DRILL_TOOLS_FROM" .tools; }
  else
    echo "note: DRILL_TOOLS_FROM=$DRILL_TOOLS_FROM has no node_modules/: installing from npm" >&2
  fi
fi

# Redis: the goupang system's session store (the lab PetClinic's Spring-Session-like sessions).
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing Redis (apt)"
  as_root apt-get update -qq
  # As for MariaDB, the package's own service is not wanted: the lab runs its own on a free port.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
else
  say "Redis present"
fi

if ! grep -qs '"version": "3.35.0"' .tools/node_modules/azurite/package.json; then
  say "installing Azurite 3.35.0 (npm, into .tools/)"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --loglevel=error azurite@3.35.0 >/dev/null
else
  say "Azurite 3.35.0 present"
fi

if ! grep -qs '"version": "2.46.1"' .tools/node_modules/allure-commandline/package.json; then
  say "installing Allure 2.46.1 (npm allure-commandline, into .tools/)"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --loglevel=error allure-commandline@2.46.1 >/dev/null
else
  say "Allure 2.46.1 present"
fi
command -v java >/dev/null 2>&1 || echo "note: no 'java' on PATH: 'drill report' (Allure 2) needs Java 8+" >&2

# Chromium renders the offline Allure report in one test (tests/lab/test_allure_report.py); that
# test skips without it, so a distribution without the package is a note, not a failure.
if [ -x /usr/bin/chromium ]; then
  say "Chromium present"
elif policy="$(apt-cache policy chromium 2>/dev/null)" && [[ "$policy" == *"Candidate: "[0-9]* && "$policy" != *snap* ]]; then
  # (Ubuntu's `chromium` is a transitional package for a snap: not installed from here.)
  say "installing Chromium (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "note: no 'chromium' package in apt: the Allure report render test will be skipped" >&2
fi

# The venv belongs to this checkout and to the interpreter it was made from: remade if either moved.
here=$(pwd -P)
if [ -x "$PY" ] && ! "$PY" -c "import sys; sys.exit(0 if sys.prefix == '$here/$VENV' else 1)" 2>/dev/null; then
  say "the virtual environment in $VENV belongs elsewhere (copied checkout?): recreating it"
  rm -rf "$VENV"
fi
if [ ! -x "$PY" ]; then
  say "creating this checkout's virtual environment ($VENV, $($BASE_PY --version))"
  $BASE_PY -m venv "$VENV"
fi

want="$(sha256sum pyproject.toml | cut -c1-16) $($PY -c 'import sys; print(sys.version.split()[0])')"
# Imported from / (not from here, where the working directory would shadow the install): the
# installed package must be this checkout.
installed_here() { (cd / && "$here/$PY" -c "import sys, drill, drivers, lab, pytest_bdd; sys.exit(0 if drill.__file__.startswith('$here/') else 1)") 2>/dev/null; }
if [ "$(cat $VENV/pip.stamp 2>/dev/null)" != "$want" ] || ! installed_here; then
  say "installing dr-drill and its pinned Python dependencies into $VENV ($($PY --version))"
  # pip byte-compiles one file at a time (≈ 40 s of a 90 s install here); compileall does it on every
  # core. Compiled it must be: where PYTHONDONTWRITEBYTECODE is set (this kind of machine sets it),
  # nothing would ever be cached and every process would compile boto3 and the Azure SDK afresh.
  $PY -m pip install --quiet --disable-pip-version-check --no-compile -e ".[dev]"
  # (A file some package ships that does not compile is skipped, as pip skips it.)
  $PY -m compileall -q -j 0 "$($PY -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
  echo "$want" > $VENV/pip.stamp
else
  say "Python dependencies up to date ($VENV)"
fi

$PY -c 'import boto3, moto, pytest_bdd, allure_pytest_bdd, azure.storage.blob, azure.mgmt.compute, kubernetes, cryptography, dnslib, redis' >/dev/null
$VENV/bin/zizmor --version >/dev/null
$VENV/bin/ruff --version >/dev/null
$VENV/bin/mypy --version >/dev/null
# Locust on its own: imported after ssl it breaks (gevent), which is why the probe is a subprocess.
$PY -m locust --version >/dev/null
say "ready: '. $VENV/bin/activate', then 'pytest -m drill' for a drill against the lab, 'pytest' for the harness's own tests"
