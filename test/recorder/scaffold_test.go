package recorder_test

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/testenv"
)

// scaffoldMain is what kn func's Go builder generates for an instanced
// CloudEvents function: it imports the function's root package as f and
// hands f.New() to func-go. func-go is not available here, so
// pkg/funcrunner.Main stands in for cloudevents.Start.
const scaffoldMain = `package main

import (
	f "github.com/liatrio/gitpulse"
	ce "github.com/liatrio/gitpulse/pkg/funcrunner"
)

func main() { ce.Main(f.New()) }
`

// TestScaffold_BuildsAndServesTheRootFunction builds the repository root
// package the way the kn func scaffolding does (a generated main, added with
// a build overlay so nothing is written into the tree), runs it as a
// process against the control plane, and records one delivery through it.
func TestScaffold_BuildsAndServesTheRootFunction(t *testing.T) {
	env := testenv.Get(t)
	dir := t.TempDir()
	mainFile := filepath.Join(dir, "main.go")
	if err := os.WriteFile(mainFile, []byte(scaffoldMain), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(env.Root, "internal", "scaffold-recorder", "main.go"): mainFile,
	}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "function")
	build := exec.Command("go", "build", "-overlay", overlayFile, "-o", bin, "./internal/scaffold-recorder")
	build.Dir = env.Root
	build.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the scaffolded function: %v\n%s", err, out)
	}

	ns := env.Namespace(t)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.ControlPlane.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logs := &syncBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = []string{"KUBECONFIG=" + kubeconfig, "GITPULSE_NAMESPACE=" + ns, "LISTEN_ADDRESS=" + addr,
		"GITPULSE_INSTANCE=recorder-test-0", "GITPULSE_LOG_LEVEL=info"}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})

	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the function never became ready (last: %v)\n%s", err, logs)
		}
		select {
		case err := <-exited:
			t.Fatalf("the function exited: %v\n%s", err, logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
	h := newHarness(t, env, ns, url, logs)
	id, body := newDeliveryID(t), readTestdata(t, "push-branch.json")
	h.deliver(t, structured, "push", id, body, http.StatusOK)
	b := expectBranch(t, h, decode(t, body), id, 1)
	ev := h.event(t, eventName(id))
	if ev.InvolvedObject.UID != b.UID || !strings.Contains(logs.String(), id) {
		t.Errorf("event %+v for branch %s; logs:\n%s", ev.InvolvedObject, b.UID, logs)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the function did not stop cleanly: %v\n%s", err, logs)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("the function did not stop within 15s")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func eventName(id string) string { return naming.EventName(id) }
