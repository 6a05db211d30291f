package deploy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/liatrio/gitpulse/internal/testenv"
)

// testdata carries copies of the third-party schemas for clones without the
// project's shared folder; when the originals are present, the copies must
// not have drifted from them.
func TestTestdata_ThirdPartySchemaCopiesMatchTheOriginals(t *testing.T) {
	env := testenv.Get(t)
	shared := filepath.Join(env.Root, "..", "shared", "crds-thirdparty")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("no shared folder at %s: the testdata copies are the only source", shared)
	}
	for _, name := range []string{"githubsource.sources.knative.dev.yaml", "func_yaml-schema.json"} {
		want, err := os.ReadFile(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s differs from %s: copy it again", name, filepath.Join(shared, name))
		}
	}
}
