// Package testenv gives integration tests a real control plane: one etcd +
// kube-apiserver per test binary with the gitpulse CRDs installed (the API
// server makes custom resources wait ~2 s after a CRD is created, so doing it
// once per binary keeps tests fast).
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//	func TestSomething(t *testing.T) { env := testenv.Get(t); ns := env.Namespace(t); ... }
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
)

// Env is the control plane shared by one test binary, with clients for it.
type Env struct {
	ControlPlane *controlplane.ControlPlane
	Kube         kubernetes.Interface
	Gitpulse     versioned.Interface
	// Root is the gitpulse module root (for crds/, config/, testdata).
	Root string
}

var (
	shared  *Env
	startup error
	nsSeq   atomic.Int64
)

// Main starts the control plane, installs the CRDs, runs the tests and stops
// the control plane. Use it as the body of TestMain.
func Main(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	env, err := Start(ctx, controlplane.Options{})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		startup = err
		return 1
	}
	shared = env
	code := m.Run()
	env.ControlPlane.Stop()
	return code
}

// Start starts a control plane with the gitpulse CRDs installed. Most tests
// want Main and Get; tests that kill the API server start their own.
func Start(ctx context.Context, opts controlplane.Options) (*Env, error) {
	root, err := controlplane.ModuleRoot()
	if err != nil {
		return nil, err
	}
	cp, err := controlplane.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	crds, err := controlplane.ReadCRDs(filepath.Join(root, "crds"))
	if err == nil {
		err = controlplane.InstallCRDs(ctx, cp.Config(), crds)
	}
	if err != nil {
		cp.Stop()
		return nil, err
	}
	env := &Env{ControlPlane: cp, Root: root}
	env.Kube = kubernetes.NewForConfigOrDie(cp.Config())
	env.Gitpulse = versioned.NewForConfigOrDie(cp.Config())
	return env, nil
}

// Get returns the binary's shared Env; the test fails if Main did not start it.
func Get(t testing.TB) *Env {
	t.Helper()
	if shared == nil {
		if startup != nil {
			t.Fatalf("control plane failed to start: %v", startup)
		}
		t.Fatal("testenv.Main did not run: add `func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }`")
	}
	return shared
}

// Config is an admin client configuration for the control plane.
func (e *Env) Config() *rest.Config { return e.ControlPlane.Config() }

// Namespace creates a fresh namespace named after the test.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("%s-%d", strings.Trim(name, "-"), nsSeq.Add(1))
	_, err := e.Kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}
