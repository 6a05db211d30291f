// Package knfunc builds a Go function the way kn func does: the real
// scaffolding data of kn func's Go templates (templates/, knative/func
// knative-v1.23.1) and the real knative.dev/func-go they require, patched by
// the rules of knative/func pkg/scaffolding/scaffold.go (Write,
// patchScaffolding, patchGoMod, mergeGoSum, patchMain), from the files the
// pack builder uploads (pkg/functions/client.go DefaultIgnored and
// .funcignore), then built by each builder's own command. It is harness code:
// make run, the demo, the end-to-end tests and the benchmarks run the binaries
// it builds, so what runs on one machine is what runs in a cluster, and
// test/scaffold proves every builder with it.
package knfunc

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// Release is the kn func release whose scaffolding data templates/ holds.
const Release = "knative-v1.23.1"

// FuncGoVersion is the knative.dev/func-go both templates require.
const FuncGoVersion = "v0.22.0"

//go:embed templates
var templates embed.FS

// Invoke is func.yaml's invoke: which scaffolding serves the function.
type Invoke string

const (
	CloudEvent Invoke = "cloudevent" // instanced-cloudevents
	HTTP       Invoke = "http"       // instanced-http
)

// Template is the scaffolding folder kn func picks for an instanced
// function with this invoke (pkg/scaffolding/signatures.go).
func (i Invoke) Template() string {
	if i == CloudEvent {
		return "instanced-cloudevents"
	}
	return "instanced-http"
}

// Builder is one of kn func's builders, each with its own build command.
type Builder string

const (
	// Pack is the Paketo Go buildpack: go mod vendor, then go build
	// -mod=vendor. Both func.yaml files name it.
	Pack Builder = "pack"
	// Host is pkg/oci/go_builder.go: go build -o (a go.mod is present, so
	// -mod=readonly), CGO_ENABLED=0.
	Host Builder = "host"
	// S2I is pkg/s2i/assemblers.go's GoAssembler: go mod tidy, then go build.
	S2I Builder = "s2i"
)

// Builders are all of them, in the order tests report them.
var Builders = []Builder{Pack, Host, S2I}

// Function is one function root: the folder holding its func.yaml and go.mod.
type Function struct {
	Root   string
	Invoke Invoke
}

// Module is the function's module path, from its go.mod.
func (fn Function) Module() (string, error) {
	mf, err := fn.goMod()
	if err != nil {
		return "", err
	}
	return mf.Module.Mod.Path, nil
}

func (fn Function) goMod() (*modfile.File, error) {
	path := filepath.Join(fn.Root, "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("a function root needs a go.mod: %w", err)
	}
	mf, err := modfile.Parse(path, data, nil)
	if err != nil {
		return nil, err
	}
	if mf.Module == nil {
		return nil, fmt.Errorf("%s: no module line", path)
	}
	return mf, nil
}

// Workspace is what a builder has: the uploaded function root (Dir) with
// kn func's scaffolding in Dir/.func/build, whose f links to Dir.
type Workspace struct {
	Dir     string
	Module  string
	Files   int   // files uploaded
	Bytes   int64 // their size
	Replace []string
}

// BuildDir is where the builders run: .func/build.
func (w *Workspace) BuildDir() string { return filepath.Join(w.Dir, ".func", "build") }

// Scaffold uploads fn's root into dir (emptied first) as the pack builder
// does, and writes kn func's scaffolding into dir/.func/build. A stable dir
// (under .cache/) lets the Go build cache serve every later build.
func Scaffold(fn Function, dir string) (*Workspace, error) {
	mf, err := fn.goMod()
	if err != nil {
		return nil, err
	}
	var replaces []string
	for _, r := range mf.Replace {
		replaces = append(replaces, r.Old.Path+" => "+r.New.Path)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	ws := &Workspace{Dir: dir, Module: mf.Module.Mod.Path, Replace: replaces}
	if ws.Files, ws.Bytes, err = Upload(fn.Root, dir); err != nil {
		return nil, fmt.Errorf("uploading %s: %w", fn.Root, err)
	}
	out := ws.BuildDir()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	tmpl := "templates/" + fn.Invoke.Template()
	for _, name := range []string{"go.mod", "go.sum"} {
		data, err := templates.ReadFile(tmpl + "/" + name + ".upstream")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(out, "main.go"), []byte(mainGo(fn.Invoke)), 0o644); err != nil {
		return nil, err
	}
	// Write links f to the function's root.
	if err := os.Symlink("../..", filepath.Join(out, "f")); err != nil {
		return nil, err
	}
	if err := patchScaffolding(fn.Root, out, mf); err != nil {
		return nil, fmt.Errorf("patching the scaffolding: %w", err)
	}
	return ws, nil
}

// Build runs builder's command in the workspace and writes the binary to
// bin. env is added to the process environment (GOFLAGS and GOWORK are
// cleared: a builder sees neither).
func (w *Workspace) Build(ctx context.Context, builder Builder, bin string, env ...string) error {
	var steps [][]string
	switch builder {
	case Pack:
		steps = [][]string{{"go", "mod", "vendor"}, {"go", "build", "-mod=vendor", "-o", bin, "."}}
	case Host:
		steps = [][]string{{"go", "build", "-o", bin}}
	case S2I:
		steps = [][]string{{"go", "mod", "tidy"}, {"go", "build", "-o", bin}}
	default:
		return fmt.Errorf("unknown builder %q", builder)
	}
	base := append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	for _, step := range steps {
		cmd := exec.CommandContext(ctx, step[0], step[1:]...)
		cmd.Dir = w.BuildDir()
		cmd.Env = append(base, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return &BuildError{Builder: builder, Command: strings.Join(step, " "), Output: string(out), Err: err}
		}
	}
	return nil
}

// BuildError is a builder's command that failed, with what it printed.
type BuildError struct {
	Builder Builder
	Command string
	Output  string
	Err     error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("%s builder: %s: %v\n%s", e.Builder, e.Command, e.Err, e.Output)
}

func (e *BuildError) Unwrap() error { return e.Err }

// mainGo is the scaffolding's main.go for invoke after patchMain (which
// names the function's module where the template says "function"): gitpulse's
// own lines doing what templates/go/scaffolding/instanced-*/main.go do, the
// cloudevents one's kafka transport included.
func mainGo(invoke Invoke) string {
	if invoke == CloudEvent {
		return `package main

import (
	"fmt"
	"os"

	ce "knative.dev/func-go/cloudevents"
	"knative.dev/func-go/kafka"

	f "function"
)

func main() {
	var err error
	if os.Getenv("FUNC_TRANSPORT") == "kafka" {
		err = kafka.Start(f.New())
	} else {
		err = ce.Start(f.New())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
`
	}
	return `package main

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
`
}

// placeholder is the version the scaffolding requires the function at.
const placeholder = "v0.0.0-00010101000000-000000000000"

// patchScaffolding applies kn func's rules: the go directive becomes the
// function's when newer; `replace function => ./f` becomes `replace <module>
// => ./f`, required at the placeholder; the function's requires are added
// unless the template already requires that module (the template's pin
// wins); the function's go.sum is appended; main.go names the module. The
// function's own replace lines are never carried over.
func patchScaffolding(src, out string, fnMod *modfile.File) error {
	module := fnMod.Module.Mod.Path
	path := filepath.Join(out, "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		return err
	}
	if fnMod.Go != nil && fnMod.Go.Version != "" {
		scaffoldV := "v0.0.0"
		if f.Go != nil {
			scaffoldV = "v" + f.Go.Version
		}
		if semver.Compare("v"+fnMod.Go.Version, scaffoldV) > 0 {
			if err := f.AddGoStmt(fnMod.Go.Version); err != nil {
				return err
			}
		}
	}
	if err := f.DropReplace("function", ""); err != nil {
		return err
	}
	if err := f.AddReplace(module, "", "./f", ""); err != nil {
		return err
	}
	if err := f.DropRequire("function"); err != nil {
		return err
	}
	if err := f.AddRequire(module, placeholder); err != nil {
		return err
	}
	existing := map[string]bool{}
	for _, r := range f.Require {
		existing[r.Mod.Path] = true
	}
	for _, r := range fnMod.Require {
		if !existing[r.Mod.Path] {
			if err := f.AddRequire(r.Mod.Path, r.Mod.Version); err != nil {
				return err
			}
		}
	}
	formatted, err := f.Format()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, formatted, 0o644); err != nil {
		return err
	}
	if sum, err := os.ReadFile(filepath.Join(src, "go.sum")); err == nil {
		g, err := os.OpenFile(filepath.Join(out, "go.sum"), os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, werr := g.Write(sum)
		if err := errors.Join(werr, g.Close()); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	mainPath := filepath.Join(out, "main.go")
	main, err := os.ReadFile(mainPath)
	if err != nil {
		return err
	}
	return os.WriteFile(mainPath, bytes.ReplaceAll(main, []byte("function"), []byte(module)), 0o644)
}

// Pin is a module the template requires at a version the function's build
// list exceeds: kn func's pack and host builders refuse such a function
// ("go: updates to go.mod needed").
type Pin struct {
	Module   string
	Pinned   string // the template's version
	Selected string // the function's
}

func (p Pin) String() string {
	return fmt.Sprintf("%s %s exceeds kn func's pin %s", p.Module, p.Selected, p.Pinned)
}

// ExceededPins lists the template's pins fn's build list exceeds (empty when
// every builder can build it). It asks the go command for fn's build list.
func ExceededPins(ctx context.Context, fn Function) ([]Pin, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Path}} {{.Version}}", "all")
	cmd.Dir = fn.Root
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m all in %s: %v\n%s", fn.Root, err, stderr.String())
	}
	selected := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if path, version, ok := strings.Cut(sc.Text(), " "); ok {
			selected[path] = version
		}
	}
	pins, err := TemplatePins(fn.Invoke)
	if err != nil {
		return nil, err
	}
	var exceeded []Pin
	for module, pinned := range pins {
		if v, ok := selected[module]; ok && semver.Compare(v, pinned) > 0 {
			exceeded = append(exceeded, Pin{Module: module, Pinned: pinned, Selected: v})
		}
	}
	sort.Slice(exceeded, func(i, j int) bool { return exceeded[i].Module < exceeded[j].Module })
	return exceeded, nil
}

// TemplatePins are the template's requires (module -> version), "function"
// left out.
func TemplatePins(invoke Invoke) (map[string]string, error) {
	name := "templates/" + invoke.Template() + "/go.mod.upstream"
	data, err := templates.ReadFile(name)
	if err != nil {
		return nil, err
	}
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return nil, err
	}
	pins := map[string]string{}
	for _, r := range f.Require {
		if r.Mod.Path != "function" {
			pins[r.Mod.Path] = r.Mod.Version
		}
	}
	return pins, nil
}
