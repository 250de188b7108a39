#!/usr/bin/env bash
# After `sam build`: each function's bootstrap must run on provided.al2023 (newest glibc symbol
# <= 2.34) and fit Lambda's zip comfortably (<= 6 MiB zipped). Prints the figures; exits 1 if not.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/.aws-sam/build"
status=0
for fn in WebhookFunction SyncFunction ApiFunction DeployCheckFunction ReconcileFunction; do
  bin="$build/$fn/bootstrap"
  [[ -x "$bin" ]] || { echo "$fn: no bootstrap in $build (run make build)"; status=1; continue; }
  glibc="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V -u | tail -1)"
  zipped="$(cd "$build/$fn" && python3 -c 'import io,zipfile,sys
b=io.BytesIO(); z=zipfile.ZipFile(b,"w",zipfile.ZIP_DEFLATED); z.write("bootstrap"); z.close(); print(len(b.getvalue()))')"
  printf '%-20s bootstrap %6d KiB, zipped %5d KiB, newest glibc symbol %s\n' \
    "$fn" $(( $(stat -c %s "$bin") / 1024 )) $(( zipped / 1024 )) "$glibc"
  if [[ "$(printf '%s\n2.34\n' "$glibc" | sort -V | tail -1)" != "2.34" ]]; then
    echo "  FAIL: needs glibc $glibc > 2.34 (provided.al2023)"; status=1
  fi
  if (( zipped > 6 * 1024 * 1024 )); then
    echo "  FAIL: zipped size over 6 MiB"; status=1
  fi
done
exit $status
