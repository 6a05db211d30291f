#!/usr/bin/env bash
# Fails when the checked-in generated code or CRDs differ from what
# hack/update-codegen.sh produces. Works on a copy, so it changes nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp" 2>/dev/null || true
(cd "$tmp" && ./hack/update-codegen.sh >/dev/null)
status=0
for d in pkg/apis pkg/client crds functions/metrics/internal; do
  if ! diff -ruN "$root/$d" "$tmp/$d"; then status=1; fi
done
if [ $status -ne 0 ]; then
  echo "generated code is stale: run 'make generate' and commit the result" >&2
fi
exit $status
