# Sourced by the bootstrap scripts: `with_retries WHAT COMMAND...` runs COMMAND until it succeeds,
# up to $attempts times, waiting $backoff seconds after the first failure and doubling up to 60 s.
# Package downloads can be cut off mid-file (seen in CI: a 14 MB wheel stopping at 7.3 MB on every
# resume), so a whole step is retried; re-running pip or npm is cheap, as what an earlier attempt
# installed is kept. The caller sets `attempts`, `backoff`, `retry_who` (the prefix of the
# messages) and `retry_hint` (what to check when every attempt failed).
with_retries() {
  local what="$1"; shift
  local attempt=1 wait="${backoff:-5}" max="${attempts:-6}"
  until "$@"; do
    if (( attempt >= max )); then
      echo "${retry_who:-retry}: $what failed $max times; ${retry_hint:-check the network and try again}" >&2
      return 1
    fi
    echo "${retry_who:-retry}: $what failed (attempt $attempt of $max); retrying in ${wait}s" >&2
    sleep "$wait"
    attempt=$((attempt + 1))
    wait=$((wait * 2 > 60 ? 60 : wait * 2))
  done
}
