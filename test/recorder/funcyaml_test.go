package recorder_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/testenv"
)

// TestFuncYAML_MatchesKnFuncSchema validates the recorder's func.yaml (the
// repository root's) against kn func's JSON schema, and checks what the
// deployment needs: a Go CloudEvents function, scale 0..N, its service
// account, and one Broker subscription per GitHub event type it handles.
func TestFuncYAML_MatchesKnFuncSchema(t *testing.T) {
	root := testenv.Get(t).Root
	schemaPath := filepath.Join(root, "..", "shared", "crds-thirdparty", "func_yaml-schema.json")
	if _, err := os.Stat(schemaPath); err != nil {
		schemaPath = filepath.Join("testdata", "func_yaml-schema.json") // a copy, outside the shared workspace
	}
	var schema map[string]any
	if err := json.Unmarshal(mustRead(t, schemaPath), &schema); err != nil {
		t.Fatal(err)
	}
	y := mustRead(t, filepath.Join(root, "func.yaml"))
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	v := validator{defs: schema["definitions"].(map[string]any)}
	v.validate("", schema, doc)
	for _, e := range v.errs {
		t.Error(e)
	}

	var fn struct {
		Name    string `json:"name"`
		Runtime string `json:"runtime"`
		Invoke  string `json:"invoke"`
		Deploy  struct {
			Namespace          string `json:"namespace"`
			ServiceAccountName string `json:"serviceAccountName"`
			Options            struct {
				Scale struct{ Min, Max *int } `json:"scale"`
			} `json:"options"`
			Subscriptions []struct {
				Source  string            `json:"source"`
				Filters map[string]string `json:"filters"`
			} `json:"subscriptions"`
		} `json:"deploy"`
	}
	if err := json.Unmarshal(j, &fn); err != nil {
		t.Fatal(err)
	}
	var m mismatch
	m.eq("name", fn.Name, "gitpulse-recorder")
	m.eq("runtime", fn.Runtime, "go")
	m.eq("invoke", fn.Invoke, "cloudevent")
	m.eq("deploy.namespace", fn.Deploy.Namespace, "gitpulse")
	m.eq("deploy.serviceAccountName", fn.Deploy.ServiceAccountName, "gitpulse-recorder")
	m.eq("scale.min", deref(fn.Deploy.Options.Scale.Min), 0)
	m.eq("scale.max > 1", deref(fn.Deploy.Options.Scale.Max) > 1, true)
	var types []string
	for _, s := range fn.Deploy.Subscriptions {
		m.eq("subscription source", s.Source, "default")
		types = append(types, s.Filters["type"])
	}
	sort.Strings(types)
	m.eq("subscribed types", strings.Join(types, " "), strings.Join([]string{
		githubevent.TypeCreate, githubevent.TypeDelete, githubevent.TypePing, githubevent.TypePullRequest, githubevent.TypePush}, " "))
	m.report(t, "func.yaml")
}

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validator checks the part of JSON Schema draft 04 that kn func's schema
// uses: $ref into definitions, type, enum, pattern, required, properties,
// patternProperties, additionalProperties and items.
type validator struct {
	defs map[string]any
	errs []string
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf("func.yaml %s: %s", orRoot(path), fmt.Sprintf(format, args...)))
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

func (v *validator) validate(path string, schema map[string]any, doc any) {
	if ref, ok := schema["$ref"].(string); ok {
		def, ok := v.defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
		if !ok {
			v.fail(path, "unresolvable $ref %s", ref)
			return
		}
		v.validate(path, def, doc)
		return
	}
	if typ, ok := schema["type"].(string); ok && !hasType(typ, doc) {
		v.fail(path, "is %T, want %s", doc, typ)
		return
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(doc)
		}
		if !found {
			v.fail(path, "%v is not one of %v", doc, enum)
		}
	}
	if pattern, ok := schema["pattern"].(string); ok {
		if s, isString := doc.(string); isString && !regexp.MustCompile(pattern).MatchString(s) {
			v.fail(path, "%q does not match %s", s, pattern)
		}
	}
	switch d := doc.(type) {
	case map[string]any:
		for _, r := range asSlice(schema["required"]) {
			if _, ok := d[r.(string)]; !ok {
				v.fail(path, "required property %s is missing", r)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		patterns, _ := schema["patternProperties"].(map[string]any)
		for k, val := range d {
			matched := false
			if ps, ok := props[k].(map[string]any); ok {
				v.validate(path+"."+k, ps, val)
				matched = true
			}
			for p, ps := range patterns {
				if regexp.MustCompile(p).MatchString(k) {
					v.validate(path+"."+k, ps.(map[string]any), val)
					matched = true
				}
			}
			if !matched {
				switch ap := schema["additionalProperties"].(type) {
				case bool:
					if !ap {
						v.fail(path, "unknown property %s", k)
					}
				case map[string]any:
					v.validate(path+"."+k, ap, val)
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, item := range d {
				v.validate(fmt.Sprintf("%s[%d]", path, i), items, item)
			}
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func hasType(typ string, doc any) bool {
	switch typ {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "boolean":
		_, ok := doc.(bool)
		return ok
	case "number":
		_, ok := doc.(float64)
		return ok
	case "integer":
		f, ok := doc.(float64)
		return ok && f == float64(int64(f))
	}
	return true
}
