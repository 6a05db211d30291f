package githubevent

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// jsonCases are payloads at the edges of JSON's grammar and of what the
// fast path takes on itself, for the tests and as fuzz seeds.
var jsonCases = []string{
	`{}`, ` { } `, `{"action":"opened"}`, "{\"action\"\t:\n\"opened\"\r}",
	`{"action":"opened","pull_request":{"number":1,"title":"a \"quoted\" \\ title \u00e9 \/"}}`,
	`{"pull_request":{"number":1},"pull_request":{"title":"t"}}`, // repeated: encoding/json merges
	`{"pull_request":{"number":1},"pull_request":null}`,
	`{"Action":"opened"}`, `{"\u0061ction":"opened"}`, `{"ſender":{"login":"s"}}`, // names encoding/json folds
	`{"number":-0.5e+3}`, `{"number":1.5}`, `{"number":01}`, `{"number":-}`, `{"number":1.}`, `{"number":1e}`, `{"number":.5}`,
	`{"x":[1,[2,{"y":[]}],"z",true,false,null]}`, `{"x":[1,]}`, `{"x":[,1]}`, `{"x":[1 2]}`,
	`{"x":tru}`, `{"x":nul}`, `{"x":truex}`, `{"x":"\x"}`, `{"x":"\u12"}`, `{"x":"\u12G4"}`, "{\"x\":\"a\x01b\"}", "{\"x\":\"\xff\xfe\"}",
	`{"x":1,}`, `{,"x":1}`, `{"x" 1}`, `{"x":1 "y":2}`, `{x:1}`, `{"x":1}}`, `{"x":1} x`, `{"x":1`, `{"x":"`, `{"x`, `{`, ``, ` `,
	`null`, `[]`, `"s"`, `1`, `true`, `[{"action":"opened"}]`,
	`{"action":7}`, `{"pull_request":"x"}`, `{"pull_request":{"number":"one"}}`, `{"pull_request":{"head":{"ref":7}}}`,
	`{"pull_request":{"created_at":"yesterday"}}`, `{"pull_request":{"created_at":1767261600,"updated_at":"2026-01-01T10:00:00Z"}}`,
	`{"review":{"id":1,"user":{"login":"r"}},"sender":null}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"x":` + strings.Repeat(`{"x":`, 9998) + `1` + strings.Repeat("}", 9999),
	`{"x":` + strings.Repeat(`{"x":`, 9999) + `1` + strings.Repeat("}", 10000),
}

// TestDecodeFast_DecodesAsEncodingJSON: the slim types decoded by the fast
// path equal json.Unmarshal's, and an error from either means an error
// from both.
func TestDecodeFast_DecodesAsEncodingJSON(t *testing.T) {
	for _, c := range jsonCases {
		decodesAlike(t, []byte(c))
	}
	for _, name := range []string{"pull_request", "pull_request_review"} {
		for _, p := range octokitExamples(t, name) {
			decodesAlike(t, p)
		}
	}
}

// FuzzFastDecode: the same for any input (jsonscan's FuzzReader checks
// the validation alone).
func FuzzFastDecode(f *testing.F) {
	for _, c := range jsonCases {
		if len(c) < 1000 {
			f.Add([]byte(c))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodesAlike(t, data)
	})
}

func decodesAlike(t *testing.T, data []byte) {
	t.Helper()
	var fastPR, wantPR slimPullRequestEvent
	errFast, errWant := decodeFast(data, &fastPR, (*slimPullRequestEvent).members), json.Unmarshal(data, &wantPR)
	sameDecode(t, data, "pull_request", errFast, errWant, fastPR, wantPR)
	var fastRv, wantRv slimPullRequestReviewEvent
	errFast, errWant = decodeFast(data, &fastRv, (*slimPullRequestReviewEvent).members), json.Unmarshal(data, &wantRv)
	sameDecode(t, data, "pull_request_review", errFast, errWant, fastRv, wantRv)
}

func sameDecode(t *testing.T, data []byte, kind string, errFast, errWant error, fast, want any) {
	t.Helper()
	if (errFast == nil) != (errWant == nil) || errFast != nil && errFast.Error() != errWant.Error() {
		t.Fatalf("%s %.80q: fast path err %v, encoding/json err %v", kind, data, errFast, errWant)
	}
	if errWant == nil && !reflect.DeepEqual(fast, want) {
		a, _ := json.Marshal(fast)
		b, _ := json.Marshal(want)
		t.Fatalf("%s %.80q:\nfast path     %s\nencoding/json %s", kind, data, a, b)
	}
}
