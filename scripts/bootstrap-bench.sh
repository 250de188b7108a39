#!/usr/bin/env bash
# Installs the peers `make bench-peers` measures against, into the repo itself: the Node packages
# of infra/bench/peers/node (npm ci from the committed package-lock.json, into its node_modules)
# and a Python venv at ./.venv-bench with infra/bench/requirements.txt (apart from ./.venv, so the
# project's tools are left alone). Idempotent: a stamp holding each manifest's hash skips the
# install when nothing changed. Each step is retried with backoff (scripts/lib/retry.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_dir="$root/infra/bench/peers/node"
venv="$root/.venv-bench"
req="$root/infra/bench/requirements.txt"
python="${PYTHON:-python3}"
attempts="${BOOTSTRAP_ATTEMPTS:-6}"
backoff="${BOOTSTRAP_BACKOFF_SECONDS:-5}"
retry_who=bootstrap-bench
retry_hint="check the network to the npm registry and PyPI and run scripts/bootstrap-bench.sh again"
# shellcheck source=lib/retry.sh
source "$root/scripts/lib/retry.sh"

# Node: npm ci replaces node_modules from the lock file; the stamp lives inside node_modules, so
# deleting that folder is enough to reinstall.
node_stamp="$node_dir/node_modules/.bench-lock.sha256"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "bootstrap-bench: node and npm not found; the Node peers will be left out (install Node 20+)" >&2
else
  node_want="$(cat "$node_dir/package.json" "$node_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$node_stamp" || "$(cat "$node_stamp")" != "$node_want" ]]; then
    echo "bootstrap-bench: npm ci in $node_dir ($(node --version))" >&2
    with_retries "npm ci" npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error >&2
    echo "$node_want" > "$node_stamp"
  fi
fi

py_stamp="$venv/.requirements.sha256"
py_want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$py_stamp" || "$(cat "$py_stamp")" != "$py_want" ]]; then
  echo "bootstrap-bench: installing into $venv: $(grep -Ev '^[[:space:]]*(#|$)' "$req" | tr '\n' ' ')" >&2
  if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
  fi
  with_retries "installing infra/bench/requirements.txt" \
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 -r "$req"
  echo "$py_want" > "$py_stamp"
fi
