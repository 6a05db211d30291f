package githubevent

import (
	"encoding/json"
)

// The slim decode (slim.go) still let encoding/json walk every byte of a
// payload twice: json.Unmarshal validates the whole payload first, then
// decodes it, and the decode goes through every member the recorder never
// reads (a pull request's repositories, users and links: most of its
// ~25 KB) with its byte-at-a-time scanner, matching each member's name
// against the struct's fields by reflection. Here one pass validates the
// payload as encoding/json's grammar does and finds the members of the
// objects the recorder reads; only those are decoded with encoding/json.
// Whatever this fast path does not handle exactly as encoding/json would
// (see fastMembers) sends the payload to encoding/json whole, so the
// result, and every error, is encoding/json's (FuzzFastDecode checks it).

// memberFunc validates and decodes, or only validates, the value of the
// member named name that starts at b[i], at nesting depth depth, and
// returns the index just past it. It returns false when the value is not
// valid or the fast path cannot decode it as encoding/json would; the
// caller then decodes the whole payload with encoding/json.
type memberFunc func(name, b []byte, i, depth int) (int, bool)

// maxDepth is encoding/json's nesting limit (scanner.go, maxNestingDepth):
// deeper payloads are not valid JSON to it.
const maxDepth = 10000

// fastMembers validates the object that starts at obj[i] and calls fn with
// each of its members. It returns the index just past the object, and
// false, without deciding anything, when the object is not valid JSON or,
// if decoding (fn is not skipMember), has a member name that encoding/json
// might match to a field other than by its exact bytes: an escaped name,
// or one with upper-case or non-ASCII letters (encoding/json matches names
// case-insensitively, with Unicode's folds). GitHub's member names are
// lower-case ASCII.
func fastMembers(obj []byte, i, depth int, fn memberFunc) (int, bool) {
	return members(obj, i, depth, fn, true)
}

func members(obj []byte, i, depth int, fn memberFunc, decoding bool) (int, bool) {
	if depth > maxDepth || i >= len(obj) || obj[i] != '{' {
		return i, false
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return i + 1, true
	}
	for {
		// A member: "name" : value
		if i >= len(obj) || obj[i] != '"' {
			return i, false
		}
		end, ok := scanString(obj, i)
		if !ok {
			return i, false
		}
		name := obj[i+1 : end-1]
		if decoding && !exactName(name) {
			return i, false
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return i, false
		}
		i = skipSpace(obj, i+1)
		if end, ok = fn(name, obj, i, depth); !ok {
			return i, false
		}
		i = skipSpace(obj, end)
		if i >= len(obj) {
			return i, false
		}
		switch obj[i] {
		case '}':
			return i + 1, true
		case ',':
			i = skipSpace(obj, i+1)
		default:
			return i, false
		}
	}
}

// exactName reports whether encoding/json can match name to a field only
// by its exact bytes.
func exactName(name []byte) bool {
	for _, c := range name {
		if c == '\\' || c >= 0x80 || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// fastObject decodes the value at b[i] into *dst as encoding/json decodes
// a member into a pointer to a struct: null sets it to nil; an object is
// decoded member by member (into the struct *dst already points to, if
// any, as encoding/json does for a repeated member); anything else is
// left to encoding/json, which refuses it.
func fastObject[T any](b []byte, i, depth int, dst **T, members func(*T, []byte, []byte, int, int) (int, bool)) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case 'n':
		end, ok := scanLiteral(b, i, "null")
		if ok {
			*dst = nil
		}
		return end, ok
	case '{':
		if *dst == nil {
			*dst = new(T)
		}
		t := *dst
		return fastMembers(b, i, depth+1, func(name, b []byte, i, depth int) (int, bool) { return members(t, name, b, i, depth) })
	}
	return i, false
}

// fastValue decodes the value at b[i] into dst with encoding/json.
func fastValue(b []byte, i, depth int, dst any) (int, bool) {
	end, ok := scanValue(b, i, depth)
	return end, ok && json.Unmarshal(b[i:end], dst) == nil
}

// skipMember validates a member the recorder does not read.
func skipMember(_, b []byte, i, depth int) (int, bool) { return scanValue(b, i, depth) }

func skipSpace(b []byte, i int) int {
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

// scanString validates the string that starts at b[i] (a '"') and returns
// the index just past it.
func scanString(b []byte, i int) (int, bool) {
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
					return i, false
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

// scanValue validates the JSON value that starts at b[i], at nesting depth
// depth, and returns the index just past it.
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return scanString(b, i)
	case c == '{':
		return members(b, i, depth+1, skipMember, false)
	case c == '[':
		if depth+1 > maxDepth {
			return i, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			end, ok := scanValue(b, i, depth+1)
			if !ok {
				return end, false
			}
			i = skipSpace(b, end)
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ']':
				return i + 1, true
			case ',':
				i = skipSpace(b, i+1)
			default:
				return i, false
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	}
	return i, false
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// scanNumber validates JSON's number grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
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

// decodeFast decodes data into *dst, a zeroed struct whose members are
// decoded by members, and falls back on encoding/json for the whole
// payload where the fast path cannot decide (fastMembers); so the result
// and every error are encoding/json's.
func decodeFast[T any](data []byte, dst *T, members func(*T, []byte, []byte, int, int) (int, bool)) error {
	end, ok := fastMembers(data, skipSpace(data, 0), 1, func(name, b []byte, i, depth int) (int, bool) { return members(dst, name, b, i, depth) })
	if ok && skipSpace(data, end) == len(data) {
		return nil
	}
	var zero T
	*dst = zero
	return json.Unmarshal(data, dst)
}

// The members slim.go's types read, by name, as their json tags say.

func (s *slimPullRequestEvent) members(name, b []byte, i, depth int) (int, bool) {
	if string(name) == "number" {
		return fastValue(b, i, depth, &s.Number)
	}
	return s.slimPullRequestPayload.members(name, b, i, depth)
}

func (s *slimPullRequestReviewEvent) members(name, b []byte, i, depth int) (int, bool) {
	if string(name) == "review" {
		return fastObject(b, i, depth, &s.Review, (*slimReview).members)
	}
	return s.slimPullRequestPayload.members(name, b, i, depth)
}

func (s *slimPullRequestPayload) members(name, b []byte, i, depth int) (int, bool) {
	switch string(name) {
	case "action":
		return fastValue(b, i, depth, &s.Action)
	case "pull_request":
		return fastObject(b, i, depth, &s.PullRequest, (*slimPullRequest).members)
	case "repository":
		return fastObject(b, i, depth, &s.Repo, (*slimRepository).members)
	case "sender":
		return fastObject(b, i, depth, &s.Sender, (*slimUser).members)
	}
	return scanValue(b, i, depth)
}

func (p *slimPullRequest) members(name, b []byte, i, depth int) (int, bool) {
	switch string(name) {
	case "id":
		return fastValue(b, i, depth, &p.ID)
	case "number":
		return fastValue(b, i, depth, &p.Number)
	case "state":
		return fastValue(b, i, depth, &p.State)
	case "title":
		return fastValue(b, i, depth, &p.Title)
	case "draft":
		return fastValue(b, i, depth, &p.Draft)
	case "merged":
		return fastValue(b, i, depth, &p.Merged)
	case "merge_commit_sha":
		return fastValue(b, i, depth, &p.MergeCommitSHA)
	case "html_url":
		return fastValue(b, i, depth, &p.HTMLURL)
	case "created_at":
		return fastValue(b, i, depth, &p.CreatedAt)
	case "updated_at":
		return fastValue(b, i, depth, &p.UpdatedAt)
	case "closed_at":
		return fastValue(b, i, depth, &p.ClosedAt)
	case "merged_at":
		return fastValue(b, i, depth, &p.MergedAt)
	case "user":
		return fastObject(b, i, depth, &p.User, (*slimUser).members)
	case "head":
		return fastObject(b, i, depth, &p.Head, (*slimBranch).members)
	case "base":
		return fastObject(b, i, depth, &p.Base, (*slimBranch).members)
	}
	return scanValue(b, i, depth)
}

func (r *slimReview) members(name, b []byte, i, depth int) (int, bool) {
	switch string(name) {
	case "id":
		return fastValue(b, i, depth, &r.ID)
	case "state":
		return fastValue(b, i, depth, &r.State)
	case "submitted_at":
		return fastValue(b, i, depth, &r.SubmittedAt)
	case "user":
		return fastObject(b, i, depth, &r.User, (*slimUser).members)
	}
	return scanValue(b, i, depth)
}

func (br *slimBranch) members(name, b []byte, i, depth int) (int, bool) {
	switch string(name) {
	case "ref":
		return fastValue(b, i, depth, &br.Ref)
	case "sha":
		return fastValue(b, i, depth, &br.SHA)
	}
	return scanValue(b, i, depth)
}

func (r *slimRepository) members(name, b []byte, i, depth int) (int, bool) {
	switch string(name) {
	case "id":
		return fastValue(b, i, depth, &r.ID)
	case "full_name":
		return fastValue(b, i, depth, &r.FullName)
	}
	return scanValue(b, i, depth)
}

func (u *slimUser) members(name, b []byte, i, depth int) (int, bool) {
	if string(name) == "login" {
		return fastValue(b, i, depth, &u.Login)
	}
	return scanValue(b, i, depth)
}
