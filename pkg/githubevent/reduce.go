package githubevent

import (
	"bytes"
	"encoding/json"
	"strings"
)

// A member picks what reduce keeps of a JSON object: the members whose
// names match (as encoding/json matches a struct field: case-insensitively,
// after unescaping), each reduced in turn by its own members when it is an
// object (nil keeps the value whole).
type member struct {
	name    string
	members []member
}

// reduce returns the JSON object data with only the members the given
// list picks, in their order (repeated names included), so that decoding
// it into a struct that has exactly those fields gives what decoding data
// itself gives: encoding/json ignores members a struct does not have, and
// a picked member keeps its value (reduced when it is an object), so a
// wrong JSON type or a null reads as before. data must be valid JSON (the
// caller checks it); what is not an object is returned as it is.
//
// It exists for speed: encoding/json walks every byte of the members it
// skips through its validating state machine, once to check and once to
// decode; a pull_request payload is ~25 KB of which the recorder reads a
// few hundred bytes. reduce skips a valid value by its brackets and
// quotes alone.
func reduce(data []byte, members []member) []byte {
	var out bytes.Buffer
	out.Grow(512)
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return data
	}
	reduceObject(&out, data, i, members)
	return out.Bytes()
}

// reduceObject writes the object at data[i] (a '{'), reduced, to out and
// returns the index after it.
func reduceObject(out *bytes.Buffer, data []byte, i int, members []member) int {
	out.WriteByte('{')
	first := true
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		out.WriteByte('}')
		return i + 1
	}
	for {
		keyStart := i
		i = skipString(data, i)
		key := data[keyStart:i]
		i = skipSpace(data, i)
		i = skipSpace(data, i+1) // the ':'
		valueStart := i
		i = skipValue(data, i)
		if m, ok := pick(key, members); ok {
			if !first {
				out.WriteByte(',')
			}
			first = false
			out.Write(key)
			out.WriteByte(':')
			if m.members != nil && data[valueStart] == '{' {
				reduceObject(out, data, valueStart, m.members)
			} else {
				out.Write(data[valueStart:i])
			}
		}
		i = skipSpace(data, i)
		if data[i] == '}' {
			out.WriteByte('}')
			return i + 1
		}
		i = skipSpace(data, i+1) // the ','
	}
}

// pick finds the member a quoted key names, as encoding/json would match
// it to a field. A plain ASCII key (every key GitHub sends) is compared
// without allocating; a key with escapes or other characters is unescaped
// and folded as encoding/json folds it.
func pick(quoted []byte, members []member) (member, bool) {
	raw := quoted[1 : len(quoted)-1]
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		for _, m := range members {
			if len(m.name) == len(raw) && asciiEqualFold(raw, m.name) {
				return m, true
			}
		}
		return member{}, false
	}
	var key string
	if json.Unmarshal(quoted, &key) != nil {
		return member{}, false
	}
	for _, m := range members {
		if strings.EqualFold(key, m.name) {
			return m, true
		}
	}
	return member{}, false
}

// asciiEqualFold compares an ASCII key with a member's (lower-case ASCII)
// name of the same length, ignoring case.
func asciiEqualFold(key []byte, name string) bool {
	for i := range key {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string at data[i] (a '"').
func skipString(data []byte, i int) int {
	start := i + 1
	for i = start; ; i++ {
		i += bytes.IndexByte(data[i:], '"')
		// A quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for j := i - 1; j >= start && data[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
	}
}

// skipValue returns the index after the valid JSON value at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(data) { // a number, true, false or null
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
