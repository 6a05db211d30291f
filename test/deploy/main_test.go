// Package deploy_test proves config/ against the real thing: kustomize renders
// it, a real kube-apiserver with the Knative, GitHubSource and Prometheus
// Operator CRDs accepts every object (server-side dry-run, strict field
// validation), the RBAC it ships grants each function exactly what it needs,
// the alert rules and scrape config pass promtool, and every func.yaml matches
// kn func's schema.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// namespace is where config/ deploys everything (config/namespace.yaml).
const namespace = "gitpulse"

// Third-party modules whose zips carry the CRDs config/ is validated against.
// They come from the Go module proxy (cached in the module cache), so the test
// needs no network beyond what `go build` needs.
const (
	servingModule    = "knative.dev/serving@v0.51.0"
	eventingModule   = "knative.dev/eventing@v0.43.0"
	prometheusModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
)

// moduleDir downloads mod@version into the module cache and returns its
// folder. It runs outside the gitpulse module so that go.mod/go.sum stay
// untouched.
func moduleDir(t testing.TB, modVersion string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); err != nil || jerr != nil || info.Error != "" || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %s %s", modVersion, err, info.Error, stderr.String())
	}
	return info.Dir
}

// kubectl returns the kubectl built with the control plane.
func kubectl(t testing.TB) string {
	t.Helper()
	dir, err := controlplane.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kubectl")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("kubectl not found (run `make controlplane` or set GITPULSE_CONTROLPLANE_BIN): %v", err)
	}
	return path
}

// renderConfig runs `kubectl kustomize config` and returns the objects.
func renderConfig(t testing.TB, root string) []*unstructured.Unstructured {
	t.Helper()
	cmd := exec.Command(kubectl(t), "kustomize", filepath.Join(root, "config"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config: %v\n%s", err, stderr.String())
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatalf("decoding kustomize output: %v", err)
	}
	return objs
}

// readObjects decodes every object in a YAML file.
func readObjects(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

func decodeObjects(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(obj.Object) == 0 {
			continue
		}
		objs = append(objs, obj)
	}
}

// ensureNamespace creates the gitpulse namespace for real (namespaced
// dry-runs need it to exist); both the dry-run and the RBAC tests use it.
func ensureNamespace(t testing.TB, env *testenv.Env) {
	t.Helper()
	_, err := env.Kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", namespace, err)
	}
}

func describe(obj *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
}
