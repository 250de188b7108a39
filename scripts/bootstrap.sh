#!/usr/bin/env bash
# Installs everything the project needs that a fresh machine lacks, into the repo itself:
# a Python venv at ./.venv with the pinned tools of infra/requirements.txt.
# Idempotent: a stamp holding the requirements' hash skips pip when nothing changed.
#
# Package downloads can be cut off mid-file, so each pip step is retried as a whole, with backoff,
# before giving up (scripts/lib/retry.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/infra/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"
attempts="${BOOTSTRAP_ATTEMPTS:-6}"
backoff="${BOOTSTRAP_BACKOFF_SECONDS:-5}"
retry_who=bootstrap
retry_hint="check the network to PyPI and run make setup again"
# shellcheck source=lib/retry.sh
source "$root/scripts/lib/retry.sh"

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

tools="$(grep -Ev '^[[:space:]]*(#|$)' "$req" | tr '\n' ' ')"
echo "bootstrap: installing into $venv (about a minute the first time): $tools" >&2
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
with_retries "upgrading pip" pip --upgrade "pip==26.3"
with_retries "installing infra/requirements.txt" pip -r "$req"
echo "$want" > "$stamp"
echo "bootstrap: done" >&2
