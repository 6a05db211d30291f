package ghsource

import (
	"embed"
)

// CRDDir is the directory (in this package) of gitpulse's own GitHubSource
// CRD, for controlplane.ReadCRDs; CRD is the same file embedded, for
// `make run`. See the file's header for what it emulates.
const CRDDir = "internal/ghsource/crd"

//go:embed crd/githubsource.yaml
var crdFS embed.FS

// CRD is gitpulse's own GitHubSource CRD (YAML).
func CRD() []byte {
	b, _ := crdFS.ReadFile("crd/githubsource.yaml")
	return b
}
