#!/usr/bin/env bash
# Regenerates everything derived from pkg/apis: deepcopy and CRD YAML
# (controller-gen), and the typed clientset
# (k8s.io/code-generator). Tools are pinned in hack/tools/codegen/go.mod.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
module=github.com/liatrio/gitpulse
apis=$module/pkg/apis/stable/v1
out=pkg/client
tool() { go tool -modfile="$root/hack/tools/codegen/go.mod" "$@"; }
boilerplate=hack/boilerplate.go.txt

tool controller-gen object:headerFile="$boilerplate" paths=./pkg/apis/...
tool controller-gen crd:crdVersions=v1 paths=./pkg/apis/... output:crd:artifacts:config=crds

rm -rf "$out"
tool client-gen --go-header-file "$boilerplate" \
  --clientset-name versioned --input-base "" --input "$apis" \
  --output-pkg "$module/$out/clientset" --output-dir "$out/clientset"
gofmt -w pkg/apis "$out"

# The metrics function's self-contained copy of what it needs from pkg/.
./hack/update-metrics-copy.sh
