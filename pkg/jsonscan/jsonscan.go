// Package jsonscan validates JSON in one pass, as encoding/json's grammar
// does (its nesting limit included), and finds the members of objects on
// the way, so that a caller decodes only the members it reads.
//
// encoding/json walks every byte of a document at least twice
// (json.Unmarshal validates it whole, then decodes it; a json.Decoder scans
// each value to find its end first), and goes through every member a
// caller never reads with a byte-at-a-time state machine, matching each
// name against a struct's fields by reflection. The recorder's payloads
// (pkg/githubevent) and the metrics function's object lists (pkg/metrics)
// are mostly members nobody reads. Callers keep encoding/json as their
// fallback for whatever they cannot decide exactly as encoding/json would,
// so results and errors stay encoding/json's; each proves that with a
// differential test and a fuzz target.
//
// Every function takes the document b and an index i into it, and returns
// the index just past what it scanned and whether that was valid; where
// it was not, the index of what is wrong, or len(b) when b may only be cut
// short (Reader reads on in a stream then).
package jsonscan

// MaxDepth is encoding/json's nesting limit (scanner.go,
// maxNestingDepth): deeper documents are not valid JSON to it.
const MaxDepth = 10000

// MemberFunc validates and decodes, or only validates, the value of the
// member named name (its bytes between the quotes, escapes as they are)
// that starts at b[i], at nesting depth depth, and returns the index just
// past it. It returns false when the value is not valid, or when the
// caller cannot decode it as encoding/json would; Members then stops.
type MemberFunc func(name, b []byte, i, depth int) (int, bool)

// Members validates the object that starts at b[i], at nesting depth
// depth (the object's own: 1 for a document's top-level object), and
// calls fn with each of its members in order. It returns the index just
// past the object, and false when the object is not valid JSON or fn
// returned false.
func Members(b []byte, i, depth int, fn MemberFunc) (int, bool) {
	if depth > MaxDepth || i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = Space(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		// A member: "name" : value
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		end, ok := String(b, i)
		if !ok {
			return end, false
		}
		name := b[i+1 : end-1]
		i = Space(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = Space(b, i+1)
		if end, ok = fn(name, b, i, depth); !ok {
			return end, false
		}
		i = Space(b, end)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case '}':
			return i + 1, true
		case ',':
			i = Space(b, i+1)
		default:
			return i, false
		}
	}
}

// SkipMember is a MemberFunc that only validates the member's value.
func SkipMember(_, b []byte, i, depth int) (int, bool) { return Value(b, i, depth) }

// Space returns the index of the first byte at or after b[i] that is not
// JSON's white space.
func Space(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plain marks the bytes a JSON string holds as they are: not '"', not
// '\\', not a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// String validates the string that starts at b[i] (a '"') and returns the
// index just past it. (encoding/json takes invalid UTF-8 in a string, and
// decodes it as U+FFFD.)
func String(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		c := b[i]
		if plain[c] {
			continue
		}
		switch c {
		case '"':
			return i + 1, true
		case '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return len(b), false // cut short, or invalid
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
	return i, false
}

// Value validates the JSON value that starts at b[i], at nesting depth
// depth (that of the object or array holding it; 0 for a document), and
// returns the index just past it.
func Value(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return String(b, i)
	case c == '{':
		return Members(b, i, depth+1, SkipMember)
	case c == '[':
		return Elements(b, i, depth+1, Value)
	case c == '-' || '0' <= c && c <= '9':
		return Number(b, i)
	case c == 't':
		return Literal(b, i, "true")
	case c == 'f':
		return Literal(b, i, "false")
	case c == 'n':
		return Literal(b, i, "null")
	}
	return i, false
}

// Elements validates the array that starts at b[i], at nesting depth depth
// (the array's own), and calls fn with each element, at depth. It returns
// the index just past the array, and false when the array is not valid
// JSON or fn returned false.
func Elements(b []byte, i, depth int, fn func(b []byte, i, depth int) (int, bool)) (int, bool) {
	if depth > MaxDepth || i >= len(b) || b[i] != '[' {
		return i, false
	}
	i = Space(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := fn(b, i, depth)
		if !ok {
			return end, false
		}
		i = Space(b, end)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ']':
			return i + 1, true
		case ',':
			i = Space(b, i+1)
		default:
			return i, false
		}
	}
}

// Literal validates the literal lit (true, false or null) at b[i].
func Literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) {
		if string(b[i:]) == lit[:len(b)-i] {
			return len(b), false // cut short
		}
		return i, false
	}
	if string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// Number validates JSON's number grammar at b[i]:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func Number(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, false
	}
	var ok bool
	if b[i] == '0' {
		i++
	} else if i, ok = digits(i); !ok {
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}
