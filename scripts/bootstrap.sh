#!/usr/bin/env bash
# Installs everything the project needs that a fresh machine lacks, into the repo itself:
# a Python venv at ./.venv with the pinned tools of infra/requirements.txt.
# Idempotent: a stamp holding the requirements' hash skips pip when nothing changed.
#
# Package downloads can be cut off mid-file (seen in CI: a 14 MB wheel stopping at 7.3 MB on every
# resume), so each pip step is retried as a whole, with backoff, before giving up. Re-running pip is
# cheap: whatever an earlier attempt installed is kept.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/infra/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"
attempts="${BOOTSTRAP_ATTEMPTS:-6}"
backoff="${BOOTSTRAP_BACKOFF_SECONDS:-5}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

# pip keeps its own per-connection retries (5, a few seconds of backoff: more only delays the outer
# retry by minutes). --resume-retries exists from pip 25.1 on, so it is passed only once the venv's
# pip has been upgraded past the interpreter's bundled one.
pip() {
  local extra=()
  # grep reads all of the help (no -q): with pipefail, pip killed by SIGPIPE would read as "no".
  if "$venv/bin/python" -m pip install --help 2>/dev/null | grep -- --resume-retries >/dev/null; then
    extra=(--resume-retries 20)
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --timeout 60 "${extra[@]}" "$@"
}

with_retries() {
  local what="$1"; shift
  local attempt=1 wait="$backoff"
  until "$@"; do
    if (( attempt >= attempts )); then
      echo "bootstrap: $what failed $attempts times; check the network to PyPI and run make setup again" >&2
      return 1
    fi
    echo "bootstrap: $what failed (attempt $attempt of $attempts); retrying in ${wait}s" >&2
    sleep "$wait"
    attempt=$((attempt + 1))
    wait=$((wait * 2 > 60 ? 60 : wait * 2))
  done
}

tools="$(grep -Ev '^[[:space:]]*(#|$)' "$req" | tr '\n' ' ')"
echo "bootstrap: installing into $venv (about a minute the first time): $tools" >&2
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
with_retries "upgrading pip" pip --upgrade "pip==26.3"
with_retries "installing infra/requirements.txt" pip -r "$req"
echo "$want" > "$stamp"
echo "bootstrap: done" >&2
