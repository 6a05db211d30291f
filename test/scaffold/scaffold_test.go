// Package scaffold_test builds each function exactly the way kn func's Go
// builder does, read from knative/func: pkg/scaffolding/scaffold.go (Write,
// patchGoMod, mergeGoSum, patchMain), templates/go/scaffolding/instanced-*
// (module s, `replace function => ./f`, a main importing f "function"),
// pkg/functions/client.go (DefaultIgnored, ParseFuncIgnore, IsIgnored) and
// pkg/buildpacks/builder.go (pack uploads the function's root minus
// .funcignore). So: only the function's folder is copied (minus what
// .funcignore and kn func always exclude); the scaffolding module is `s` with
// `replace <function module> => ./f` and the function's requires and go.sum
// merged in — never its replace lines: a function that has any fails here —
// and it is built with -mod=readonly. The one stand-in is func-go itself (not
// served by this project's module proxy): a module knative.dev/func-go made
// from internal/funcrunner, which serves functions as func-go does. Each binary
// then runs against a real API server as its own ServiceAccount
// (config/rbac), answers /health/readiness, serves a request, and stops
// cleanly on SIGTERM.
package scaffold_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
	"github.com/liatrio/gitpulse/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// namespace and ServiceAccounts as config/ deploys them.
const namespace = "gitpulse"

// The scaffolding templates' main.go (templates/go/scaffolding/instanced-*),
// without the kafka transport; patchMain replaces "function" with the
// function's module path.
var mainGo = map[string]string{
	"ce": `package main

import (
	"fmt"
	"os"

	ce "knative.dev/func-go/cloudevents"

	f "function"
)

func main() {
	if err := ce.Start(f.New()); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
`,
	"http": `package main

import (
	"fmt"
	"os"

	"knative.dev/func-go/http"

	f "function"
)

func main() {
	if err := http.Start(f.New()); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
`,
}

// placeholderVersion is the version the scaffolding requires the function
// module at (replaced by ./f), and the stand-in's.
const placeholderVersion = "v0.0.0-00010101000000-000000000000"

// The func-go stand-in: the packages the scaffolding's main imports, with
// func-go's Start signatures (cloudevents.Start(f any), http.Start(f
// Handler)), serving through a copy of internal/funcrunner (added by standInDir).
var standIn = map[string]string{
	"go.mod": "module knative.dev/func-go\n\ngo 1.25.0\n",
	"cloudevents/start.go": `package cloudevents

import "knative.dev/func-go/internal/funcrunner"

// Start serves f until SIGINT or SIGTERM.
func Start(f any) error { funcrunner.Main(f); return nil }
`,
	"http/start.go": `package http

import (
	"net/http"

	"knative.dev/func-go/internal/funcrunner"
)

// Handler is what func-go's http.Start accepts.
type Handler interface {
	Handle(http.ResponseWriter, *http.Request)
}

// Start serves f until SIGINT or SIGTERM.
func Start(f Handler) error { funcrunner.Main(f); return nil }
`,
}

type function struct {
	name           string // Knative Service / ServiceAccount name
	module         string
	dir            string // relative to the gitpulse root
	invoke         string // "ce" (cloudevent) or "http", as func.yaml's invoke
	serviceAccount string
	// request proves the running function does its job, not just health.
	request func(t *testing.T, url string)
}

func TestScaffold_EachFunctionBuildsAndServesLikeKnFunc(t *testing.T) {
	env := testenv.Get(t)
	applyConfig(t, env, "namespace.yaml", "rbac/recorder.yaml", "rbac/metrics.yaml")

	functions := []function{
		{
			name: "gitpulse-recorder", module: "github.com/liatrio/gitpulse", dir: ".", invoke: "ce",
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
			name: "gitpulse-metrics", module: "github.com/liatrio/gitpulse/functions/metrics", dir: "functions/metrics", invoke: "http",
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
	for _, fn := range functions {
		t.Run(fn.name, func(t *testing.T) {
			fnDir := filepath.Join(env.Root, fn.dir)
			if _, err := os.Stat(filepath.Join(fnDir, "func.yaml")); err != nil {
				t.Fatalf("%s has no func.yaml: not a kn func function root", fn.dir)
			}
			bin := build(t, env.Root, fn, fnDir)
			run(t, env, fn, bin)
		})
	}
}

// build does what `kn func build` does with the pack builder, and returns
// the binary.
func build(t *testing.T, root string, fn function, fnDir string) string {
	t.Helper()
	refuseReplace(t, filepath.Join(fnDir, "go.mod"))
	// pack uploads the function's root only, minus .funcignore.
	ws := filepath.Join(t.TempDir(), "workspace")
	copied := uploadFunctionRoot(t, fnDir, ws)
	t.Logf("%s: uploaded %d files, %d KiB", fn.name, copied.files, copied.bytes>>10)
	// A working tree that has run `make run` holds hundreds of MiB in bin/
	// and .cache/; .funcignore must keep them out of the upload.
	if copied.bytes > 5<<20 {
		t.Errorf("%s: kn func would upload %d MiB: extend its .funcignore", fn.name, copied.bytes>>20)
	}

	// The scaffolding lives in .func/build, with f -> the function root.
	out := filepath.Join(ws, ".func", "build")
	template := templateModule(t, root, fn.invoke)
	if err := os.CopyFS(out, os.DirFS(template)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../..", filepath.Join(out, "f")); err != nil {
		t.Fatal(err)
	}
	patchScaffolding(t, ws, out)
	if data, _ := os.ReadFile(filepath.Join(out, "go.mod")); true {
		mf, err := modfile.Parse("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		var replaces []string
		for _, r := range mf.Replace {
			replaces = append(replaces, r.Old.Path+" => "+r.New.Path)
		}
		sort.Strings(replaces)
		want := strings.Join([]string{fn.module + " => ./f", "knative.dev/func-go => ./func-go"}, ",")
		if strings.Join(replaces, ",") != want {
			t.Fatalf("scaffolding replaces %v, want exactly %s", replaces, want)
		}
	}
	bin := filepath.Join(t.TempDir(), "function")
	cmd := exec.Command("go", "build", "-mod=readonly", "-o", bin, ".")
	cmd.Dir = out
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		gomod, _ := os.ReadFile(filepath.Join(out, "go.mod"))
		t.Fatalf("go build -mod=readonly in the scaffolding of %s: %v\n%s\ngo.mod:\n%s", fn.dir, err, output, gomod)
	}
	return bin
}

// refuseReplace fails when the function's go.mod has replace lines: kn
// func's scaffolding drops them, so the function would not build there.
func refuseReplace(t *testing.T, path string) {
	t.Helper()
	replaces, err := replacesIn(path)
	if err != nil {
		t.Fatalf("%s: a function root needs a go.mod: %v", path, err)
	}
	for _, r := range replaces {
		t.Errorf("%s: replace %s: kn func's scaffolding drops replace lines, so this cannot build in a cluster", path, r)
	}
	if t.Failed() {
		t.FailNow()
	}
}

func replacesIn(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	mf, err := modfile.Parse(path, data, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range mf.Replace {
		out = append(out, r.Old.Path+" => "+r.New.Path)
	}
	return out, nil
}

func TestScaffold_SeesReplaceLinesAndIgnoredFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":         "module example.com/fn\n\ngo 1.25.0\n\nreplace example.com/lib => ../lib\n",
		".funcignore":    "# comment\n/bin\n/.cache\n*.test\nnode_modules\n",
		"f.go":           "package fn\n",
		"bin/huge":       "x",
		".cache/huge":    "x",
		"sub/bin/kept":   "root-relative /bin leaves sub/bin",
		"sub/x.test":     "x",
		"a/node_modules": "x",
		".git/HEAD":      "x",
	}
	for name, text := range files {
		path := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(text), 0o644))
	}
	if r, err := replacesIn(filepath.Join(dir, "go.mod")); err != nil || len(r) != 1 {
		t.Errorf("replace lines = %v, %v; want the one", r, err)
	}
	dst := filepath.Join(t.TempDir(), "ws")
	uploadFunctionRoot(t, dir, dst)
	for name, want := range map[string]bool{"go.mod": true, "f.go": true, "sub/bin/kept": true,
		"bin/huge": false, ".cache/huge": false, "sub/x.test": false, "a/node_modules": false, ".git/HEAD": false, ".funcignore": false} {
		_, err := os.Stat(filepath.Join(dst, name))
		if got := err == nil; got != want {
			t.Errorf("%s uploaded = %v, want %v", name, got, want)
		}
	}
}

type uploaded struct{ files, bytes int64 }

// uploadFunctionRoot copies what the pack builder uploads: the function's
// root minus kn func's DefaultIgnored entries and .funcignore's patterns
// (IsIgnored's four forms).
func uploadFunctionRoot(t *testing.T, src, dst string) uploaded {
	t.Helper()
	patterns := parseFuncIgnore(t, src)
	var n uploaded
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if isIgnored(rel, patterns) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			n.files++
			n.bytes += int64(len(data))
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// kn func's DefaultIgnored (pkg/functions/client.go).
var defaultIgnored = []string{".git", ".func", ".funcignore", ".gitignore"}

func parseFuncIgnore(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".funcignore"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	return patterns
}

// isIgnored mirrors kn func's IsIgnored: "/foo" root-relative, "foo/" and
// "foo" by base name at any depth, globs against the base name and the
// relative path.
func isIgnored(rel string, patterns []string) bool {
	base := filepath.Base(rel)
	for _, d := range defaultIgnored {
		if base == d {
			return true
		}
	}
	slashRel := filepath.ToSlash(rel)
	for _, p := range patterns {
		if strings.HasPrefix(p, "/") {
			if slashRel == p[1:] || strings.HasPrefix(slashRel, p[1:]+"/") {
				return true
			}
			continue
		}
		p = strings.TrimSuffix(p, "/")
		if ok, _ := filepath.Match(p, base); ok {
			return true
		}
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
	}
	return false
}

// templateModule writes the scaffolding template for invoke: main.go, and
// the func-go stand-in in ./func-go (its own module, tidied). The template's
// go.mod requires the placeholder function and the stand-in, nothing else.
//
// The real templates (templates/go/scaffolding/instanced-*/go.mod, func-go
// v0.22.0) also list func-go's own dependencies at pinned versions, and the
// scaffolding keeps those over the function's: with -mod=readonly a function
// requiring a newer version of any of them does not build (see
// docs/deploy.md, "Building with kn func"). The stand-in's dependencies are
// not listed here, so the build proves what gitpulse controls — each
// function's folder alone, its requires and go.sum, no replace — and that
// the stand-in resolves from them.
func templateModule(t *testing.T, root, invoke string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "template")
	files := map[string]string{"main.go": mainGo[invoke]}
	for name, text := range standIn {
		files[filepath.Join("func-go", name)] = text
	}
	// internal/funcrunner and what it imports of this repository, moved under
	// the stand-in module.
	for _, pkg := range []string{"funcrunner", "inflight"} {
		sources, err := filepath.Glob(filepath.Join(root, "internal", pkg, "*.go"))
		if err != nil || len(sources) == 0 {
			t.Fatalf("internal/%s: %v", pkg, err)
		}
		for _, path := range sources {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(b), `"github.com/liatrio/gitpulse/internal/`, `"knative.dev/func-go/internal/`)
			if strings.Contains(text, "github.com/liatrio/gitpulse") {
				t.Fatalf("%s imports more of gitpulse than the stand-in carries", path)
			}
			files[filepath.Join("func-go", "internal", pkg, filepath.Base(path))] = text
		}
	}
	files["go.mod"] = "module s\n\nreplace function => ./f\n\nreplace knative.dev/func-go => ./func-go\n\ngo 1.25.0\n\nrequire (\n\tfunction " +
		placeholderVersion + "\n\tknative.dev/func-go " + placeholderVersion + "\n)\n"
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "mod", "tidy")
	cmd.Dir = filepath.Join(dir, "func-go")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tidying the func-go stand-in: %v\n%s", err, out)
	}
	return dir
}

// patchScaffolding is kn func's patchScaffolding: the function's module
// replaces "function" (=> ./f, required at the placeholder version), its
// go directive wins when newer, its requires are added unless the template
// already requires that module, its go.sum is appended, and main.go names its
// module.
func patchScaffolding(t *testing.T, fnRoot, out string) {
	t.Helper()
	fnData, err := os.ReadFile(filepath.Join(fnRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	fnMod, err := modfile.Parse("go.mod", fnData, nil)
	if err != nil {
		t.Fatal(err)
	}
	module := fnMod.Module.Mod.Path
	path := filepath.Join(out, "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fnMod.Go != nil && (f.Go == nil || semverLess(f.Go.Version, fnMod.Go.Version)) {
		must(t, f.AddGoStmt(fnMod.Go.Version))
	}
	must(t, f.DropReplace("function", ""))
	must(t, f.AddReplace(module, "", "./f", ""))
	must(t, f.DropRequire("function"))
	must(t, f.AddRequire(module, placeholderVersion))
	existing := map[string]bool{}
	for _, r := range f.Require {
		existing[r.Mod.Path] = true
	}
	for _, r := range fnMod.Require {
		if !existing[r.Mod.Path] {
			must(t, f.AddRequire(r.Mod.Path, r.Mod.Version))
		}
	}
	formatted, err := f.Format()
	must(t, err)
	must(t, os.WriteFile(path, formatted, 0o644))

	if sum, err := os.ReadFile(filepath.Join(fnRoot, "go.sum")); err == nil {
		g, err := os.OpenFile(filepath.Join(out, "go.sum"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		must(t, err)
		_, err = g.Write(sum)
		must(t, err)
		must(t, g.Close())
	}
	main, err := os.ReadFile(filepath.Join(out, "main.go"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(out, "main.go"), bytes.ReplaceAll(main, []byte("function"), []byte(module)), 0o644))
}

// semverLess compares go directive versions ("1.25.0" < "1.26.0").
func semverLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			fmt.Sscan(pa[i], &x)
		}
		if i < len(pb) {
			fmt.Sscan(pb[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
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
