// Package scaffold_test proves that kn func builds both functions: the real
// scaffolding data of kn func's Go templates (internal/knfunc/templates,
// knative/func knative-v1.23.1), the real knative.dev/func-go v0.22.0 from the
// module proxy, kn func's patch rules and upload filter (internal/knfunc, read
// from pkg/scaffolding/scaffold.go and pkg/functions/client.go) and each
// builder's own command: pack (go mod vendor, go build -mod=vendor), host (go
// build, so -mod=readonly) and s2i (go mod tidy, go build, on the oldest Go
// the go directive allows). Every binary then runs against a real API server
// as its own ServiceAccount (config/rbac), answers its probes, serves a
// request, and stops cleanly on SIGTERM.
package scaffold_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/knfunc"
	"github.com/liatrio/gitpulse/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// namespace and ServiceAccounts as config/ deploys them.
const namespace = "gitpulse"

// s2iGo is the Go the s2i path builds with: the oldest the functions' go
// directive allows (the UBI go-toolset image may carry no newer Go and may not
// download toolchains), taken from the module proxy as golang.org/toolchain.
const s2iGo = "go1.25.0"

type function struct {
	name           string // Knative Service / ServiceAccount name
	module         string
	dir            string // relative to the gitpulse root
	invoke         knfunc.Invoke
	serviceAccount string
	// request proves the running function does its job, not just health.
	request func(t *testing.T, url string)
}

var functions = []function{
	{
		name: "gitpulse-recorder", module: "github.com/liatrio/gitpulse", dir: ".", invoke: knfunc.CloudEvent,
		serviceAccount: "gitpulse-recorder",
		request: func(t *testing.T, url string) {
			// GitHub's ping, as the GitHubSource adapter sends it (binary
			// mode): the recorder acknowledges and writes nothing.
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"zen":"Keep it logically awesome.","hook_id":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Ce-Specversion", "1.0")
			req.Header.Set("Ce-Id", "8d0a6a10-0000-0000-0000-000000000001")
			req.Header.Set("Ce-Type", "dev.knative.source.github.ping")
			req.Header.Set("Ce-Source", "https://github.com/octo/repo")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("ping answered %d: %s", resp.StatusCode, body)
			}
		},
	},
	{
		name: "gitpulse-metrics", module: "github.com/liatrio/gitpulse/functions/metrics", dir: "functions/metrics", invoke: knfunc.HTTP,
		serviceAccount: "gitpulse-metrics",
		request: func(t *testing.T, url string) {
			resp, err := http.Get(url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("gitpulse_")) {
				t.Fatalf("/metrics answered %d:\n%.500s", resp.StatusCode, body)
			}
		},
	},
}

// TestScaffold_NoDependencyExceedsKnFuncsPins names every module whose
// version a function selects above its template's pin: pack and host would
// refuse it ("go: updates to go.mod needed"), so this fails first, clearly.
func TestScaffold_NoDependencyExceedsKnFuncsPins(t *testing.T) {
	env := testenv.Get(t)
	for _, fn := range functions {
		t.Run(fn.name, func(t *testing.T) {
			exceeded, err := knfunc.ExceededPins(context.Background(), knfunc.Function{Root: filepath.Join(env.Root, fn.dir), Invoke: fn.invoke})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range exceeded {
				t.Errorf("%s/go.mod: %s (kn func %s, template %s): lower it, or move to a kn func release that pins it higher",
					fn.dir, p, knfunc.Release, fn.invoke.Template())
			}
		})
	}
}

func TestScaffold_EachFunctionBuildsOnEveryBuilderAndServes(t *testing.T) {
	env := testenv.Get(t)
	applyConfig(t, env, "namespace.yaml", "rbac/recorder.yaml", "rbac/metrics.yaml")
	cache := os.Getenv("GITPULSE_CACHE")
	if cache == "" {
		cache = filepath.Join(env.Root, ".cache")
	}
	for _, fn := range functions {
		for _, builder := range knfunc.Builders {
			t.Run(fn.name+"/"+string(builder), func(t *testing.T) {
				fnDir := filepath.Join(env.Root, fn.dir)
				if _, err := os.Stat(filepath.Join(fnDir, "func.yaml")); err != nil {
					t.Fatalf("%s has no func.yaml: not a kn func function root", fn.dir)
				}
				// A stable folder: the Go build cache serves later runs.
				ws, err := knfunc.Scaffold(knfunc.Function{Root: fnDir, Invoke: fn.invoke},
					filepath.Join(cache, "scaffold", fn.name, string(builder)))
				if err != nil {
					t.Fatal(err)
				}
				checkWorkspace(t, fn, ws)
				bin := filepath.Join(t.TempDir(), "function")
				// -trimpath keeps the build cache's entries independent of
				// the checkout's folder (CI clones into a new one each
				// time); it changes only the file names in the binary.
				extra := []string{"GOFLAGS=-trimpath"}
				if builder == knfunc.S2I {
					extra = append(extra, "GOTOOLCHAIN="+s2iGo)
				}
				if err := ws.Build(context.Background(), builder, bin, extra...); err != nil {
					gomod, _ := os.ReadFile(filepath.Join(ws.BuildDir(), "go.mod"))
					t.Fatalf("%v\nscaffolding go.mod:\n%s", err, gomod)
				}
				if builder == knfunc.S2I {
					checkBuiltWith(t, bin, s2iGo)
				}
				run(t, env, fn, bin)
			})
		}
	}
}

// checkWorkspace fails on what kn func could not build in a cluster: replace
// lines (the scaffolding drops them), an upload of more than the function
// needs, a scaffolding that is not module s with exactly `<module> => ./f`
// and the real func-go.
func checkWorkspace(t *testing.T, fn function, ws *knfunc.Workspace) {
	t.Helper()
	for _, r := range ws.Replace {
		t.Errorf("%s/go.mod: replace %s: kn func's scaffolding drops replace lines, so this cannot build in a cluster", fn.dir, r)
	}
	t.Logf("%s: uploaded %d files, %d KiB", fn.name, ws.Files, ws.Bytes>>10)
	// A working tree that has run `make run` holds hundreds of MiB in bin/
	// and .cache/; .funcignore must keep them out of the upload.
	if ws.Bytes > 5<<20 {
		t.Errorf("%s: kn func would upload %d MiB: extend its .funcignore", fn.name, ws.Bytes>>20)
	}
	data, err := os.ReadFile(filepath.Join(ws.BuildDir(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var replaces []string
	for _, r := range mf.Replace {
		replaces = append(replaces, r.Old.Path+" => "+r.New.Path)
	}
	if want := fn.module + " => ./f"; mf.Module.Mod.Path != "s" || len(replaces) != 1 || replaces[0] != want {
		t.Fatalf("scaffolding is module %s with replaces %v, want module s with exactly %s", mf.Module.Mod.Path, replaces, want)
	}
	funcGo := ""
	for _, r := range mf.Require {
		if r.Mod.Path == "knative.dev/func-go" {
			funcGo = r.Mod.Version
		}
	}
	if funcGo != knfunc.FuncGoVersion {
		t.Fatalf("scaffolding requires knative.dev/func-go %q, want %s", funcGo, knfunc.FuncGoVersion)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkBuiltWith fails unless bin was built by Go version want.
func checkBuiltWith(t *testing.T, bin, want string) {
	t.Helper()
	out, err := exec.Command("go", "version", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version %s: %v\n%s", bin, err, out)
	}
	if !strings.Contains(string(out), ": "+want+" ") && !strings.HasSuffix(strings.TrimSpace(string(out)), ": "+want) {
		t.Fatalf("s2i binary built by %s, want %s", strings.TrimSpace(string(out)), want)
	}
}

// TestScaffold_AFunctionAboveAPinFailsWithItsName is the failure a
// dependency bump would cause, on a function made for it: pack and host
// refuse it, and ExceededPins names the module and the pin.
func TestScaffold_AFunctionAboveAPinFailsWithItsName(t *testing.T) {
	env := testenv.Get(t)
	// The metrics function with x/sys one minor above the http template's pin.
	src := filepath.Join(env.Root, "functions", "metrics")
	fnDir := filepath.Join(t.TempDir(), "fn")
	if _, _, err := knfunc.Upload(src, fnDir); err != nil {
		t.Fatal(err)
	}
	pins, err := knfunc.TemplatePins(knfunc.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	pinned := pins["golang.org/x/sys"]
	bumped := bumpMinor(t, pinned)
	gomod := filepath.Join(fnDir, "go.mod")
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("golang.org/x/sys "+pinned), []byte("golang.org/x/sys "+bumped), 1)
	if err := os.WriteFile(gomod, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = fnDir
	tidy.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy with x/sys %s: %v\n%s", bumped, err, out)
	}
	fn := knfunc.Function{Root: fnDir, Invoke: knfunc.HTTP}
	exceeded, err := knfunc.ExceededPins(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	want := knfunc.Pin{Module: "golang.org/x/sys", Pinned: pinned, Selected: bumped}
	if len(exceeded) != 1 || exceeded[0] != want {
		t.Fatalf("ExceededPins = %v, want [%v]", exceeded, want)
	}
	if got := want.String(); !strings.Contains(got, "golang.org/x/sys "+bumped) || !strings.Contains(got, "pin "+pinned) {
		t.Errorf("message %q does not name the module, its version and the pin", got)
	}
	ws, err := knfunc.Scaffold(fn, filepath.Join(t.TempDir(), "ws"))
	if err != nil {
		t.Fatal(err)
	}
	err = ws.Build(context.Background(), knfunc.Host, filepath.Join(t.TempDir(), "bin"))
	var be *knfunc.BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Output, "updates to go.mod needed") {
		t.Fatalf("host build of a function above the x/sys pin: %v; want go's \"updates to go.mod needed\"", err)
	}
}

// bumpMinor is v with its minor version one higher ("v0.47.0" -> "v0.48.0").
func bumpMinor(t *testing.T, v string) string {
	t.Helper()
	var major, minor, patch int
	if _, err := fmt.Sscanf(v, "v%d.%d.%d", &major, &minor, &patch); err != nil {
		t.Fatalf("pin %q: %v", v, err)
	}
	return fmt.Sprintf("v%d.%d.0", major, minor+1)
}

// run starts the binary as the function's ServiceAccount, waits for
// readiness, sends one request, and stops it with SIGTERM.
func run(t *testing.T, env *testenv.Env, fn function, bin string) {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"LISTEN_ADDRESS=127.0.0.1:"+fmt.Sprint(port),
		"KUBECONFIG="+kubeconfigAs(t, env, fn.serviceAccount),
		"GITPULSE_NAMESPACE="+namespace,
		"GITPULSE_LOG_LEVEL=debug",
	)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("function output:\n%s", logs.String())
		}
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("function exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("function not ready within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, err := http.Get(url + "/health/liveness"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("liveness: %v %v", resp, err)
	}
	fn.request(t, url)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("function did not stop cleanly on SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("function still running 30s after SIGTERM")
	}
}

// kubeconfigAs writes a kubeconfig for the control plane that impersonates
// the ServiceAccount, so the function gets exactly config/'s RBAC.
func kubeconfigAs(t *testing.T, env *testenv.Env, serviceAccount string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.ControlPlane.WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = "system:serviceaccount:" + namespace + ":" + serviceAccount
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// applyConfig creates the named config/ files' objects for real.
func applyConfig(t *testing.T, env *testenv.Env, files ...string) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(env.Config())
	for _, file := range files {
		b, err := os.ReadFile(filepath.Join(env.Root, "config", file))
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			gvr := map[string]string{
				"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings",
			}[obj.GetKind()]
			if gvr == "" {
				t.Fatalf("%s: unexpected %s", file, obj.GetKind())
			}
			gv := obj.GroupVersionKind().GroupVersion()
			var res dynamic.ResourceInterface = dyn.Resource(gv.WithResource(gvr))
			if obj.GetNamespace() != "" {
				res = dyn.Resource(gv.WithResource(gvr)).Namespace(obj.GetNamespace())
			}
			if _, err := res.Create(context.Background(), obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
		}
	}
}

// harness are the packages that serve the functions outside a cluster or
// test them: none of them, nor a copy of one, may ship in a function.
var harness = []string{"funcrunner", "inflight", "localrun", "testenv", "controlplane", "eventingstack",
	"intake", "ghwebhook", "fakegithub", "functest", "knfunc", "ghadapter", "ghsource", "freeport", "proc", "flock", "octokit"}

// TestScaffold_NothingHarnessShips lists what each function's package
// imports, as its build does, and fails on any harness package: the
// repository's internal/ holds only harness, and the metrics function's
// internal/ only the generated copy of pkg/.
func TestScaffold_NothingHarnessShips(t *testing.T) {
	env := testenv.Get(t)
	for _, fn := range functions {
		t.Run(fn.name, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", ".")
			cmd.Dir = filepath.Join(env.Root, fn.dir)
			cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps in %s: %v", fn.dir, err)
			}
			shipped := 0
			for _, pkg := range strings.Fields(string(out)) {
				if !strings.HasPrefix(pkg, "github.com/liatrio/gitpulse") {
					continue
				}
				shipped++
				rel := strings.TrimPrefix(strings.TrimPrefix(pkg, fn.module), "/")
				if fn.dir == "." && (strings.HasPrefix(rel, "internal/") || strings.HasPrefix(rel, "cmd/") || strings.HasPrefix(rel, "test/")) {
					t.Errorf("%s ships %s: harness code", fn.name, pkg)
				}
				for _, h := range harness {
					if rel == "internal/"+h || strings.HasPrefix(rel, "internal/"+h+"/") {
						t.Errorf("%s ships %s: harness code (or a copy of it)", fn.name, pkg)
					}
				}
			}
			if shipped == 0 {
				t.Fatalf("go list -deps in %s listed no gitpulse package", fn.dir)
			}
		})
	}
}
