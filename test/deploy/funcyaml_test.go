package deploy_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/liatrio/gitpulse/internal/testenv"
)

// The functions kn func deploys (docs/architecture.md): each root has a
// func.yaml. A missing one is a failure that names it.
var functionRoots = []string{".", "functions/metrics"}

// funcSchema compiles kn func's func.yaml JSON schema (knative/func,
// schema/func_yaml-schema.json): from the project's shared folder when present,
// else the copy in testdata.
func funcSchema(t testing.TB, root string) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join(root, "..", "shared", "crds-thirdparty", "func_yaml-schema.json")
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join("testdata", "func_yaml-schema.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("func_yaml-schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("func_yaml-schema.json")
	if err != nil {
		t.Fatalf("compiling %s: %v", path, err)
	}
	return schema
}

func validateFuncYAML(schema *jsonschema.Schema, data []byte) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return schema.Validate(inst)
}

func TestFuncYAML_EveryFunctionMatchesKnFuncSchema(t *testing.T) {
	env := testenv.Get(t)
	schema := funcSchema(t, env.Root)

	// The expected roots, plus any other func.yaml that appears in the tree.
	files := map[string]bool{}
	for _, dir := range functionRoots {
		files[filepath.Join(dir, "func.yaml")] = true
	}
	err := filepath.WalkDir(env.Root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".cache" || d.Name() == "bin" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() == "func.yaml" {
			rel, _ := filepath.Rel(env.Root, path)
			files[rel] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(env.Root, file))
			if errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s is missing: kn func deploy needs it at the function's root", file)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := validateFuncYAML(schema, data); err != nil {
				t.Fatalf("%s does not match kn func's schema:\n%v", file, err)
			}
			// config/ binds RBAC to these names and routes to these services.
			var f struct {
				Name    string
				Runtime string
				Invoke  string
				Deploy  struct {
					Namespace          string
					ServiceAccountName string `json:"serviceAccountName"`
					Labels             []struct{ Key, Value string }
					Options            struct {
						Scale struct{ Min, Max *int }
					}
				}
			}
			if err := yaml.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"func.yaml": "gitpulse-recorder", "functions/metrics/func.yaml": "gitpulse-metrics"}[file]
			if want != "" && (f.Name != want || f.Deploy.ServiceAccountName != want || f.Deploy.Namespace != namespace) {
				t.Errorf("%s: name %q, serviceAccountName %q, namespace %q; config/ expects %q, %q, %q",
					file, f.Name, f.Deploy.ServiceAccountName, f.Deploy.Namespace, want, want, namespace)
			}
			// Not exposed by default: Knative Serving gives a Service only a
			// cluster-internal address with this label (docs/deploy.md,
			// "Threat model"); kn func copies deploy.labels onto it (knative/func
			// pkg/deployer/common.go, GenerateCommonLabels).
			if want != "" {
				local := false
				for _, l := range f.Deploy.Labels {
					local = local || (l.Key == "networking.knative.dev/visibility" && l.Value == "cluster-local")
				}
				if !local {
					t.Errorf("%s: deploy.labels lacks networking.knative.dev/visibility: cluster-local; the function would be reachable from outside the cluster", file)
				}
			}
			// The shapes the design asks for: the recorder a CloudEvents
			// function that scales 0..N, metrics an HTTP function at exactly one.
			scale := func(p *int) int {
				if p == nil {
					return -1
				}
				return *p
			}
			min, max := scale(f.Deploy.Options.Scale.Min), scale(f.Deploy.Options.Scale.Max)
			switch file {
			case "func.yaml":
				if f.Runtime != "go" || f.Invoke != "cloudevent" || min != 0 || max < 1 {
					t.Errorf("%s: runtime %q invoke %q scale %d..%d, want go cloudevent 0..N", file, f.Runtime, f.Invoke, min, max)
				}
			case "functions/metrics/func.yaml":
				if f.Runtime != "go" || f.Invoke != "http" || min != 1 || max != 1 {
					t.Errorf("%s: runtime %q invoke %q scale %d..%d, want go http 1..1", file, f.Runtime, f.Invoke, min, max)
				}
			}
		})
	}
}

// The validator must actually enforce the schema, or the test above proves
// nothing.
func TestFuncYAML_SchemaRejectsBrokenFiles(t *testing.T) {
	env := testenv.Get(t)
	schema := funcSchema(t, env.Root)
	// Each case is a minimal valid func.yaml plus one mistake.
	const valid = "specVersion: 0.36.0\nname: x\nruntime: go\ncreated: 2026-11-25T00:00:00Z\n"
	tests := []struct{ name, yaml string }{
		{"unknown top-level field", valid + "image_name: x\n"},
		{"negative scale", valid + "deploy:\n  options:\n    scale:\n      min: -1\n"},
		{"subscription filters not a map", valid + "deploy:\n  subscriptions:\n  - source: default\n    filters: [a]\n"},
		{"builder not pack or s2i", valid + "build:\n  builder: docker\n"},
		{"no created timestamp", "specVersion: 0.36.0\nname: x\nruntime: go\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateFuncYAML(schema, []byte(tt.yaml)); err == nil {
				t.Fatalf("schema accepted:\n%s", tt.yaml)
			}
		})
	}
	if err := validateFuncYAML(schema, []byte(valid)); err != nil {
		t.Fatalf("schema refused a minimal valid func.yaml: %v", err)
	}
}
