package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// grammarCases are documents at the edges of JSON's grammar, for the
// tests and as fuzz seeds.
var grammarCases = []string{
	`{}`, ` { } `, `{"a":"b"}`, "{\"a\"\t:\n\"b\"\r}", `{"a":"a \"quoted\" \\ title \u00e9 \/"}`,
	`{"a":{"n":1},"a":null}`, `{"\u0061":1}`,
	`{"n":-0.5e+3}`, `{"n":1.5}`, `{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":1e}`, `{"n":.5}`, `{"n":-01}`, `{"n":1E+}`,
	`{"x":[1,[2,{"y":[]}],"z",true,false,null]}`, `{"x":[1,]}`, `{"x":[,1]}`, `{"x":[1 2]}`, `[ ]`, `[1]`,
	`{"x":tru}`, `{"x":nul}`, `{"x":truex}`, `{"x":"\x"}`, `{"x":"\u12"}`, `{"x":"\u12G4"}`, "{\"x\":\"a\x01b\"}", "{\"x\":\"\xff\xfe\"}",
	`{"x":1,}`, `{,"x":1}`, `{"x" 1}`, `{"x":1 "y":2}`, `{x:1}`, `{"x":1}}`, `{"x":1} x`, `{"x":1`, `{"x":"`, `{"x`, `{`, ``, ` `,
	`null`, `[]`, `"s"`, `1`, `-2.5E-3`, `true`, `false`, `nul`, `[{"a":"b"}]`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"x":` + strings.Repeat(`{"x":`, 9998) + `1` + strings.Repeat("}", 9999),
	`{"x":` + strings.Repeat(`{"x":`, 9999) + `1` + strings.Repeat("}", 10000),
}

// valid is the scans' answer to json.Valid.
func valid(b []byte) bool {
	end, ok := Value(b, Space(b, 0), 0)
	return ok && Space(b, end) == len(b)
}

// TestValue_ValidatesAsEncodingJSON: the scans agree with json.Valid,
// nesting limit included.
func TestValue_ValidatesAsEncodingJSON(t *testing.T) {
	for _, c := range grammarCases {
		if got, want := valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("%.60q: valid %v, json.Valid %v", c, got, want)
		}
	}
}

// TestMembers_CallsTheFunctionWithEachMemberInOrder: names as they are
// (escapes included) and each value's start.
func TestMembers_CallsTheFunctionWithEachMemberInOrder(t *testing.T) {
	doc := []byte(` {"a" : 1, "b\u0062":{"c":[2]},"a":"x"} `)
	var got []string
	end, ok := Members(doc, 1, 1, func(name, b []byte, i, depth int) (int, bool) {
		end, ok := Value(b, i, depth)
		got = append(got, string(name)+"="+string(b[i:end]))
		return end, ok
	})
	if !ok || end != len(doc)-1 {
		t.Fatalf("Members = %d, %v; want %d, true", end, ok, len(doc)-1)
	}
	if want := `a=1 b\u0062={"c":[2]} a="x"`; strings.Join(got, " ") != want {
		t.Errorf("members %q, want %q", strings.Join(got, " "), want)
	}
	// A member function's refusal ends the scan.
	if _, ok := Members(doc, 1, 1, func([]byte, []byte, int, int) (int, bool) { return 0, false }); ok {
		t.Error("Members went on after its function refused a member")
	}
}

// readValues reads the document in r as a Reader does a list: a value,
// then only white space.
func readValues(r io.Reader) ([]byte, error) {
	rd := NewReader(r, 1)
	v, err := rd.NextValue(0)
	if err != nil {
		return nil, err
	}
	v = bytes.Clone(v)
	if _, err := rd.Peek(); !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errors.New("more after the value")
	}
	return v, nil
}

// TestReader_ReadsAValueHoweverTheStreamIsCut: a value read one byte at a
// time or whole is the same, and valid exactly when json.Valid says so.
func TestReader_ReadsAValueHoweverTheStreamIsCut(t *testing.T) {
	for _, c := range grammarCases {
		whole, errWhole := readValues(strings.NewReader(c))
		bytewise, errBytewise := readValues(iotest.OneByteReader(strings.NewReader(c)))
		if (errWhole == nil) != json.Valid([]byte(c)) || (errBytewise == nil) != (errWhole == nil) {
			t.Errorf("%.60q: whole %v, one byte at a time %v, json.Valid %v", c, errWhole, errBytewise, json.Valid([]byte(c)))
			continue
		}
		if errWhole == nil && (string(whole) != strings.TrimSpace(c) || !bytes.Equal(whole, bytewise)) {
			t.Errorf("%.60q: read %.60q whole, %.60q one byte at a time", c, whole, bytewise)
		}
	}
}

// TestReader_ReportsWhereAndWhy: a stream cut short is
// io.ErrUnexpectedEOF, invalid JSON an error with its offset, and a
// read's own error is returned as it is.
func TestReader_ReportsWhereAndWhy(t *testing.T) {
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name string
		r    io.Reader
		want string
	}{
		{"cut short", strings.NewReader(`{"a":[1,2`), io.ErrUnexpectedEOF.Error()},
		{"invalid", strings.NewReader(`{"a":[1,x]}`), "invalid JSON at offset 8"},
		{"a read's error", io.MultiReader(strings.NewReader(`{"a":`), iotest.ErrReader(broken)), broken.Error()},
		{"nothing", strings.NewReader(` `), io.ErrUnexpectedEOF.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(tc.r, 1).NextValue(0)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	rd := NewReader(strings.NewReader(` [1] `), 16)
	if err := rd.Expect('{'); err == nil || err.Error() != `invalid character '[' at offset 1, want '{'` {
		t.Errorf("Expect('{') on '[': %v", err)
	}
}

// FuzzReader: for any document and any cut of the stream, the Reader
// agrees with json.Valid and reads the same value.
func FuzzReader(f *testing.F) {
	for _, c := range grammarCases {
		if len(c) < 1000 {
			f.Add(c, uint8(1))
		}
	}
	f.Fuzz(func(t *testing.T, doc string, chunk uint8) {
		var r io.Reader = strings.NewReader(doc)
		if chunk%4 == 1 {
			r = iotest.OneByteReader(r)
		} else if chunk%4 == 2 {
			r = iotest.HalfReader(r)
		}
		v, err := readValues(r)
		if (err == nil) != json.Valid([]byte(doc)) {
			t.Fatalf("%q: Reader error %v, json.Valid %v", doc, err, json.Valid([]byte(doc)))
		}
		if err == nil && string(v) != strings.Trim(doc, " \t\r\n") {
			t.Fatalf("%q: read %q", doc, v)
		}
	})
}
