package knfunc

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// The template files are kn func's, byte for byte (knative/func
// knative-v1.23.1, templates/go/scaffolding/<name>/go.{mod,sum}): an edit
// here would make the builds prove something kn func does not do.
func TestTemplates_AreKnFuncsFilesByteForByte(t *testing.T) {
	want := map[string]string{
		"instanced-cloudevents/go.mod.upstream": "d0abd0297288f7e40e60c8c4eef3217e6fe20600880f07369db4138aba7d1ae6",
		"instanced-cloudevents/go.sum.upstream": "3a14d667c45d1cc2009ef2322d1bc35f27b8c961ea6c59f9a40c27c549be6e09",
		"instanced-http/go.mod.upstream":        "16d4c936c179b58ab38dd44981a0cdce89b159e1dde88f860c56cd93e8815b23",
		"instanced-http/go.sum.upstream":        "f66fcb412e38fa80655ac9d46150d6a0f661db05a33cfa97b545b8d4db8c7acf",
	}
	for name, sum := range want {
		data, err := templates.ReadFile("templates/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s changed (sha256 %x): it must stay kn func %s's file", name, got, Release)
		}
	}
}

func TestTemplatePins_AreTheTemplatesRequires(t *testing.T) {
	for _, tt := range []struct {
		invoke Invoke
		want   map[string]string // a few of them
	}{
		{CloudEvent, map[string]string{"knative.dev/func-go": FuncGoVersion, "golang.org/x/net": "v0.56.0",
			"github.com/modern-go/reflect2": "v1.0.2", "github.com/IBM/sarama": "v1.50.3"}},
		{HTTP, map[string]string{"knative.dev/func-go": FuncGoVersion, "golang.org/x/sys": "v0.47.0", "github.com/rs/zerolog": "v1.35.1"}},
	} {
		pins, err := TemplatePins(tt.invoke)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := pins["function"]; ok {
			t.Errorf("%s: the placeholder function module is not a pin", tt.invoke)
		}
		for m, v := range tt.want {
			if pins[m] != v {
				t.Errorf("%s: pin of %s = %q, want %s", tt.invoke, m, pins[m], v)
			}
		}
	}
}

// Scaffold applies kn func's patchScaffolding rules to a function's go.mod:
// the rows are the rules of pkg/scaffolding/scaffold.go.
func TestScaffold_PatchesGoModAsKnFuncDoes(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", `module example.com/fn

go 1.26.0

require (
	golang.org/x/sys v0.49.0
	example.com/lib v1.2.3
)

replace example.com/lib => ../lib
`)
	write("go.sum", "example.com/lib v1.2.3 h1:function-sum=\n")
	write("fn.go", "package fn\n")
	write(".funcignore", "/big\n")
	write("big/file", "not uploaded")
	write(".git/HEAD", "never uploaded")

	ws, err := Scaffold(Function{Root: root, Invoke: HTTP}, filepath.Join(t.TempDir(), "ws"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(ws.BuildDir(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	required := map[string]string{}
	for _, r := range mf.Require {
		required[r.Mod.Path] = r.Mod.Version
	}
	var replaces []string
	for _, r := range mf.Replace {
		replaces = append(replaces, r.Old.Path+" => "+r.New.Path)
	}
	sum, _ := os.ReadFile(filepath.Join(ws.BuildDir(), "go.sum"))
	main, _ := os.ReadFile(filepath.Join(ws.BuildDir(), "main.go"))
	link, _ := os.Readlink(filepath.Join(ws.BuildDir(), "f"))
	_, bigErr := os.Stat(filepath.Join(ws.Dir, "big", "file"))
	_, gitErr := os.Stat(filepath.Join(ws.Dir, ".git"))
	for _, c := range []struct {
		rule string
		ok   bool
	}{
		{"the module is s", mf.Module.Mod.Path == "s"},
		{"the go directive is raised to the function's", mf.Go != nil && mf.Go.Version == "1.26.0"},
		{"the function is required at the placeholder", required["example.com/fn"] == placeholder},
		{"the placeholder module is gone", required["function"] == ""},
		{"the template's pin wins over the function's version", required["golang.org/x/sys"] == "v0.47.0"},
		{"a require the template lacks is added", required["example.com/lib"] == "v1.2.3"},
		{"the only replace is the function's => ./f", len(replaces) == 1 && replaces[0] == "example.com/fn => ./f"},
		{"the function's go.sum is appended", strings.HasSuffix(string(sum), "example.com/lib v1.2.3 h1:function-sum=\n")},
		{"main imports the function's module", strings.Contains(string(main), `f "example.com/fn"`) && !strings.Contains(string(main), `"function"`)},
		{"f links to the function's root", link == "../.."},
		{".funcignore's paths are not uploaded", os.IsNotExist(bigErr)},
		{"DefaultIgnored is not uploaded", os.IsNotExist(gitErr)},
		{"the function's replace lines are reported", len(ws.Replace) == 1 && ws.Replace[0] == "example.com/lib => ../lib"},
	} {
		if !c.ok {
			t.Errorf("%s: not so\ngo.mod:\n%s", c.rule, data)
		}
	}
}

func TestScaffold_MainIsTheTemplatesForEachInvoke(t *testing.T) {
	for _, tt := range []struct {
		invoke Invoke
		want   []string
	}{
		{CloudEvent, []string{`ce "knative.dev/func-go/cloudevents"`, `"knative.dev/func-go/kafka"`, `os.Getenv("FUNC_TRANSPORT") == "kafka"`, "kafka.Start(f.New())", "ce.Start(f.New())"}},
		{HTTP, []string{`"knative.dev/func-go/http"`, "http.Start(f.New())"}},
	} {
		main := mainGo(tt.invoke)
		for _, w := range tt.want {
			if !strings.Contains(main, w) {
				t.Errorf("%s main.go lacks %s", tt.invoke, w)
			}
		}
	}
}

func TestIgnored_FollowsKnFuncsIsIgnored(t *testing.T) {
	patterns := []string{"/bin", "/.cache", "*.test", "node_modules", "docs/"}
	for _, tt := range []struct {
		rel  string
		want bool
	}{
		{"bin", true},
		{"bin/x", true},
		{"sub/bin", false}, // "/bin" is root-relative
		{".cache/huge", true},
		{"pkg/x.test", true},
		{"a/node_modules", true},
		{"docs", true},
		{"nested/docs", true}, // "docs/" matches by base name at any depth
		{".git", true},
		{".funcignore", true},
		{"function.go", false},
	} {
		if got := Ignored(tt.rel, patterns); got != tt.want {
			t.Errorf("Ignored(%q) = %v, want %v", tt.rel, got, tt.want)
		}
	}
}
