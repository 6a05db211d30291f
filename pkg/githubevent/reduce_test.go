package githubevent

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzReduce: decoding a pull_request payload reduced to the members the
// recorder reads gives what decoding the whole payload into the same
// struct gives, errors included, for any input.
func FuzzReduce(f *testing.F) {
	for _, s := range []string{
		`{"action":"opened","pull_request":{"number":1,"state":"open","updated_at":"2026-01-01T10:00:00Z"},"repository":{"full_name":"o/r"}}`,
		`{"Action":"x","ACTION":"y","pull_request":{"head":{"ref":"a\"b\\","sha":1}},"pull_request":{"head":null}}`,
		`{"\u0061ction":"z","number":"seven","ſender":{"login":"k"},"repository":[1,{"a":"}"}]}`,
		` [1] `, `null`, `{}`, `{"pull_request":{"user":{"login":"u","id":1},"title":"t\\"}}`,
		`{"number":1e3,"pull_request":{"merged_at":0,"draft":true,"x":{"y":[{"z":"\\\\"}]}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var whole, reduced slimPullRequestEvent
		errWhole := json.Unmarshal(data, &whole)
		var errReduced error
		if json.Valid(data) {
			errReduced = json.Unmarshal(reduce(data, pullRequestEventMembers), &reduced)
		} else {
			errReduced = json.Unmarshal(data, &reduced)
		}
		if (errWhole == nil) != (errReduced == nil) {
			t.Fatalf("%s\nwhole: %v\nreduced (%s): %v", data, errWhole, reduce(data, pullRequestEventMembers), errReduced)
		}
		if errWhole == nil && !reflect.DeepEqual(whole, reduced) {
			t.Fatalf("%s\nreduced to %s:\n%s\n%s", data, reduce(data, pullRequestEventMembers), dump(whole), dump(reduced))
		}
	})
}

func dump(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestReduce_OctokitExamples: every example reads alike reduced or whole.
func TestReduce_OctokitExamples(t *testing.T) {
	for i, p := range octokitExamples(t, "pull_request") {
		var whole, reduced slimPullRequestEvent
		if err := json.Unmarshal(p, &whole); err != nil {
			t.Fatal(err)
		}
		small := reduce(p, pullRequestEventMembers)
		if err := json.Unmarshal(small, &reduced); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(whole, reduced) {
			t.Fatalf("example %d:\n%s\n%s", i, dump(whole), dump(reduced))
		}
		if i == 0 {
			t.Logf("%d bytes reduced to %d: %s", len(p), len(small), small)
		}
	}
}
