// Package graphqlschema proves the GraphQL that gitpulse sends and the
// answers the fake GitHub gives it against GitHub's published schema
// (npm @octokit/graphql-schema, `make graphql-schema`): the operation is
// valid (fields, arguments, variables, nothing deprecated), its variables
// are of their declared types, and every answer of the fake has exactly
// the shape the operation's selection gives it in that schema — so the
// fake, which recognises the operation rather than executing GraphQL,
// answers what GitHub would.
package graphqlschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/liatrio/gitpulse/internal/fakegithub"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// schema loads GitHub's schema: GITPULSE_GRAPHQL_SCHEMA, else the npm
// package under GITPULSE_CACHE (the Makefile exports both).
func schema(t *testing.T) *ast.Schema {
	t.Helper()
	path := os.Getenv("GITPULSE_GRAPHQL_SCHEMA")
	if path == "" {
		path = filepath.Join(os.Getenv("GITPULSE_CACHE"), "npm/node_modules/@octokit/graphql-schema/schema.graphql")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("GitHub's GraphQL schema (run `make graphql-schema`): %v", err)
	}
	doc, err := parser.ParseSchemas(validator.Prelude, &ast.Source{Name: "github.schema.graphql", Input: string(src)})
	if err != nil {
		t.Fatalf("parsing GitHub's schema: %v", err)
	}
	// GitHub's published schema (15.26.1) defines
	// EnterpriseOwnerInfo.repositoryDeployKeySetting twice, identically,
	// which GraphQL's rules (and gqlparser) refuse; dropping the identical
	// repeat changes no field. Repeats that differ stay, and fail below.
	for _, def := range doc.Definitions {
		def.Fields = dropIdenticalRepeats(t, def.Name, def.Fields)
	}
	s, err := validator.ValidateSchemaDocument(doc)
	if err != nil {
		t.Fatalf("loading GitHub's schema: %v", err)
	}
	return s
}

func dropIdenticalRepeats(t *testing.T, typ string, fields ast.FieldList) ast.FieldList {
	seen := map[string]*ast.FieldDefinition{}
	var out ast.FieldList
	for _, f := range fields {
		if first, ok := seen[f.Name]; ok && first.Type.String() == f.Type.String() && len(first.Arguments) == len(f.Arguments) {
			t.Logf("GitHub's schema repeats %s.%s: the repeat is dropped", typ, f.Name)
			continue
		}
		seen[f.Name] = f
		out = append(out, f)
	}
	return out
}

func operation(t *testing.T, s *ast.Schema) *ast.OperationDefinition {
	t.Helper()
	doc, errs := gqlparser.LoadQueryWithRules(s, reconcile.PullRequestsQuery, nil)
	if len(errs) > 0 {
		t.Fatalf("PullRequestsQuery is not valid against GitHub's schema: %v", errs)
	}
	op := doc.Operations.ForName(reconcile.PullRequestsOperation)
	if op == nil {
		t.Fatalf("no operation named %s", reconcile.PullRequestsOperation)
	}
	return op
}

func TestPullRequestsQuery_ValidAgainstGitHubSchema(t *testing.T) {
	s := schema(t)
	op := operation(t, s)
	var deprecated []string
	var walk func(ast.SelectionSet, string)
	walk = func(set ast.SelectionSet, path string) {
		for _, sel := range set {
			f, ok := sel.(*ast.Field)
			if !ok {
				t.Fatalf("%s: only fields are expected, got %T", path, sel)
			}
			if f.Definition != nil && f.Definition.Directives.ForName("deprecated") != nil {
				deprecated = append(deprecated, path+"."+f.Name)
			}
			walk(f.SelectionSet, path+"."+f.Alias)
		}
	}
	walk(op.SelectionSet, "")
	if len(deprecated) > 0 {
		t.Errorf("deprecated fields selected: %v", deprecated)
	}
	for _, tc := range []struct {
		name string
		vars map[string]any
	}{
		{"first page", reconcile.PullRequestsVariables("acme", "widgets", "")},
		{"a later page", reconcile.PullRequestsVariables("acme", "widgets", "Y3Vyc29yOnYyOpK5")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// As the client sends them: through JSON.
			b, _ := json.Marshal(tc.vars)
			var vars map[string]any
			_ = json.Unmarshal(b, &vars)
			if _, err := validator.VariableValues(s, op, vars); err != nil {
				t.Errorf("variables %s: %v", b, err)
			}
		})
	}
}

// The fake's answers to the operation, over pull requests of every kind
// (open, closed, merged with a merge commit, a draft, a deleted author,
// reviews and none, a second page), have the shape the selection gives
// them in GitHub's schema: every selected field present under its alias,
// nothing else, null only where the schema allows it, scalars and enum
// values of their types.
func TestFakeGitHubAnswers_HaveTheSchemasShape(t *testing.T) {
	s := schema(t)
	op := operation(t, s)
	gh := fakegithub.New(fakegithub.Options{Token: "t"})
	defer gh.Close()
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for n := 1; n <= 130; n++ {
		at := base.Add(time.Duration(n) * time.Hour)
		pr := &github.PullRequest{Number: github.Int(n), Title: github.String(fmt.Sprintf("change %d", n)),
			State: github.String("open"), Draft: github.Bool(n%7 == 0),
			HTMLURL:   github.String(fmt.Sprintf("https://github.com/acme/widgets/pull/%d", n)),
			User:      &github.User{Login: github.String("octocat")},
			Head:      &github.PullRequestBranch{Ref: github.String("feature"), SHA: github.String("0123456789abcdef0123456789abcdef01234567")},
			Base:      &github.PullRequestBranch{Ref: github.String("main")},
			CreatedAt: &github.Timestamp{Time: at.Add(-time.Hour)}, UpdatedAt: &github.Timestamp{Time: at}}
		switch n % 4 {
		case 1:
			pr.State, pr.ClosedAt = github.String("closed"), &github.Timestamp{Time: at}
		case 2:
			pr.State, pr.ClosedAt, pr.MergedAt = github.String("closed"), &github.Timestamp{Time: at}, &github.Timestamp{Time: at}
			pr.MergeCommitSHA = github.String("fedcba9876543210fedcba9876543210fedcba98")
		case 3:
			pr.User = &github.User{Login: github.String("ghost")}
		}
		gh.SetPullRequest("acme/widgets", pr)
		for i := 0; i < n%3; i++ {
			rv := &github.PullRequestReview{ID: github.Int64(int64(n*10 + i)), State: github.String([]string{"APPROVED", "COMMENTED"}[i]),
				SubmittedAt: &github.Timestamp{Time: at}, User: &github.User{Login: github.String("reviewer")}}
			if n%5 == 0 {
				rv.User = &github.User{Login: github.String("ghost")}
			}
			gh.AddReview("acme/widgets", n, rv)
		}
	}
	after := ""
	for page := 1; ; page++ {
		body, _ := json.Marshal(map[string]any{"query": reconcile.PullRequestsQuery, "operationName": reconcile.PullRequestsOperation,
			"variables": reconcile.PullRequestsVariables("acme", "widgets", after)})
		req, _ := http.NewRequest(http.MethodPost, gh.URL()+"graphql", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var answer map[string]any
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(answer) != 1 || answer["data"] == nil {
			t.Fatalf("page %d: want only data, got %v", page, answer)
		}
		for _, e := range conforms(s, op.SelectionSet, answer["data"], "data") {
			t.Errorf("page %d: %s", page, e)
		}
		prs := answer["data"].(map[string]any)["repository"].(map[string]any)["pullRequests"].(map[string]any)
		info := prs["pageInfo"].(map[string]any)
		if info["hasNextPage"] != true {
			if page != 2 {
				t.Errorf("130 pull requests in %d pages of 100", page)
			}
			return
		}
		after = info["endCursor"].(string)
	}
}

// conforms lists where value differs from what selection set, in schema,
// makes of it.
func conforms(s *ast.Schema, set ast.SelectionSet, value any, path string) []string {
	obj, ok := value.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: want an object, got %T", path, value)}
	}
	var errs []string
	selected := map[string]bool{}
	for _, sel := range set {
		f := sel.(*ast.Field)
		selected[f.Alias] = true
		v, ok := obj[f.Alias]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s.%s: missing", path, f.Alias))
			continue
		}
		errs = append(errs, conformsType(s, f.Definition.Type, f.SelectionSet, v, path+"."+f.Alias)...)
	}
	for k := range obj {
		if !selected[k] {
			errs = append(errs, fmt.Sprintf("%s.%s: not selected", path, k))
		}
	}
	return errs
}

func conformsType(s *ast.Schema, typ *ast.Type, set ast.SelectionSet, v any, path string) []string {
	if v == nil {
		if typ.NonNull {
			return []string{path + ": null, but " + typ.String() + " is non-null"}
		}
		return nil
	}
	if typ.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want a list (%s), got %T", path, typ, v)}
		}
		var errs []string
		for i, e := range list {
			errs = append(errs, conformsType(s, typ.Elem, set, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	}
	def := s.Types[typ.NamedType]
	switch def.Kind {
	case ast.Object, ast.Interface, ast.Union:
		return conforms(s, set, v, path)
	case ast.Enum:
		str, ok := v.(string)
		if !ok || def.EnumValues.ForName(str) == nil {
			return []string{fmt.Sprintf("%s: %v is not a value of %s", path, v, def.Name)}
		}
		return nil
	}
	// Scalars: GitHub's custom ones (DateTime, URI, GitObjectID, BigInt,
	// ...) are strings on the wire.
	ok := false
	switch def.Name {
	case "Int":
		f, isNum := v.(float64)
		ok = isNum && f == float64(int64(f))
	case "Float":
		_, ok = v.(float64)
	case "Boolean":
		_, ok = v.(bool)
	case "DateTime":
		str, isStr := v.(string)
		_, err := time.Parse(time.RFC3339, str)
		ok = isStr && err == nil
	default:
		_, ok = v.(string)
	}
	if !ok {
		return []string{fmt.Sprintf("%s: %v (%T) is not a %s", path, v, v, def.Name)}
	}
	return nil
}
