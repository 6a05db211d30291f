package githubevent

import (
	"encoding/json"

	"github.com/liatrio/gitpulse/pkg/jsonscan"
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

// fastMembers validates the object that starts at obj[i] and calls fn with
// each of its members (jsonscan.Members). It returns the index just past
// the object, and false, without deciding anything, when the object is not
// valid JSON or has a member name that encoding/json might match to a
// field other than by its exact bytes: an escaped name, or one with
// upper-case or non-ASCII letters (encoding/json matches names
// case-insensitively, with Unicode's folds). GitHub's member names are
// lower-case ASCII.
func fastMembers(obj []byte, i, depth int, fn jsonscan.MemberFunc) (int, bool) {
	return jsonscan.Members(obj, i, depth, func(name, b []byte, i, depth int) (int, bool) {
		if !exactName(name) {
			return i, false
		}
		return fn(name, b, i, depth)
	})
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
		end, ok := jsonscan.Literal(b, i, "null")
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
	end, ok := jsonscan.Value(b, i, depth)
	return end, ok && json.Unmarshal(b[i:end], dst) == nil
}

// decodeFast decodes data into *dst, a zeroed struct whose members are
// decoded by members, and falls back on encoding/json for the whole
// payload where the fast path cannot decide (fastMembers); so the result
// and every error are encoding/json's.
func decodeFast[T any](data []byte, dst *T, members func(*T, []byte, []byte, int, int) (int, bool)) error {
	end, ok := fastMembers(data, jsonscan.Space(data, 0), 1, func(name, b []byte, i, depth int) (int, bool) { return members(dst, name, b, i, depth) })
	if ok && jsonscan.Space(data, end) == len(data) {
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
	return jsonscan.Value(b, i, depth)
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
	return jsonscan.Value(b, i, depth)
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
	return jsonscan.Value(b, i, depth)
}

func (br *slimBranch) members(name, b []byte, i, depth int) (int, bool) {
	switch string(name) {
	case "ref":
		return fastValue(b, i, depth, &br.Ref)
	case "sha":
		return fastValue(b, i, depth, &br.SHA)
	}
	return jsonscan.Value(b, i, depth)
}

func (r *slimRepository) members(name, b []byte, i, depth int) (int, bool) {
	switch string(name) {
	case "id":
		return fastValue(b, i, depth, &r.ID)
	case "full_name":
		return fastValue(b, i, depth, &r.FullName)
	}
	return jsonscan.Value(b, i, depth)
}

func (u *slimUser) members(name, b []byte, i, depth int) (int, bool) {
	if string(name) == "login" {
		return fastValue(b, i, depth, &u.Login)
	}
	return jsonscan.Value(b, i, depth)
}
