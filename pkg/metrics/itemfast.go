package metrics

import (
	"strconv"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/jsonscan"
)

// A list item's fast decode: one pass over its JSON (jsonscan) that
// validates it and decodes only the members its record reads, by hand:
// the metadata's name, namespace, creation time and one annotation, a few
// spec fields, and the status's repositoryNamedAt. encoding/json walked
// each item three times (the decoder's scan for its end, Unmarshal's
// validation, the decode), through the status and every spec field,
// matching names by reflection, and parsed each time through a second
// json.Unmarshal (metav1.Time): at 70,000 pull requests most of the
// function's start-up CPU (docs/benchmarks.md, issue 23, twelfth round).
//
// Wherever the fast decode cannot tell that encoding/json would decode the
// same record, it declines and the item goes to encoding/json whole
// (decodeAs): a member it reads that is repeated (encoding/json merges
// them), null, or not of the plain shape the API server writes (a string
// with an escape or invalid UTF-8, a number that is not an integer, a time
// time.Parse refuses); a member name that encoding/json would match to one
// it reads other than by its exact bytes (it matches names
// case-insensitively, with Unicode's folds). What it does not read it only
// validates: an unread field of the wrong type, which encoding/json would
// refuse, costs the record nothing. TestFastItem_DecodesTheRecordOfEncodingJSON
// and FuzzFastItem hold it to that.

// The members each level reads, by the JSON names of their fields.
var (
	itemMembers        = []string{"metadata", "spec", "status"}
	metaMembers        = []string{"name", "namespace", "creationTimestamp", "annotations"}
	annotationMembers  = []string{stablev1.AnnotationRepository}
	statusMembers      = []string{"repositoryNamedAt"}
	pullRequestMembers = []string{"repository", "repositoryID", "status", "merged", "openedAt", "mergedAt", "firstReviewAt", "firstApprovalAt"}
	branchMembers      = []string{"repository", "repositoryID", "state"}
	deploymentMembers  = []string{"repository", "repositoryID", "environment", "firstSuccessAt", "firstFailureAt", "changes"}
	changeMembers      = []string{"number", "openedAt"}
)

// memberFields decodes the members of the object at b[i] (at depth, the
// object's own) that are among names with decode(k, ...) for names[k],
// and validates the rest. It declines (false) where the comment above says in the
// comment above.
func memberFields(b []byte, i, depth int, names []string, decode func(k int, b []byte, i, depth int) (int, bool)) (int, bool) {
	var seen uint32
	return jsonscan.Members(b, i, depth, func(name, b []byte, i, depth int) (int, bool) {
		for k, n := range names {
			if string(name) == n {
				if seen&(1<<k) != 0 {
					return i, false
				}
				seen |= 1 << k
				return decode(k, b, i, depth)
			}
		}
		if foldsInto(name, names) {
			return i, false
		}
		return jsonscan.Value(b, i, depth)
	})
}

// foldsInto reports whether encoding/json might match a member named name
// (its bytes as they are in the JSON), which is none of names exactly, to
// one of them: an escaped or non-ASCII name (Unicode's folds: "ſ" is an
// "s" to it), or one that equals one of names but for ASCII case.
func foldsInto(name []byte, names []string) bool {
	for _, c := range name {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	for _, n := range names {
		if len(n) == len(name) && equalFoldASCII(n, name) {
			return true
		}
	}
	return false
}

func equalFoldASCII(s string, b []byte) bool {
	for i := range len(s) {
		x, y := s[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// plainString decodes the string at b[i] into *dst when encoding/json
// would decode the same bytes: no escape, valid UTF-8.
func plainString(b []byte, i int, dst *string) (int, bool) {
	s, end, ok := plainBytes(b, i)
	if ok {
		*dst = string(s)
	}
	return end, ok
}

func plainBytes(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	end, ok := jsonscan.String(b, i)
	if !ok {
		return nil, end, false
	}
	s := b[i+1 : end-1]
	ascii := true
	for _, c := range s {
		if c == '\\' {
			return nil, i, false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	return s, end, ascii || utf8.Valid(s)
}

// integer decodes the integer at b[i] into *dst as encoding/json decodes a
// number into an int64 (strconv.ParseInt of its text).
func integer(b []byte, i int, dst *int64) (int, bool) {
	if i >= len(b) || b[i] != '-' && (b[i] < '0' || b[i] > '9') {
		return i, false
	}
	end, ok := jsonscan.Number(b, i)
	if !ok {
		return end, false
	}
	n, err := strconv.ParseInt(string(b[i:end]), 10, 64)
	if err != nil {
		return i, false
	}
	*dst = n
	return end, true
}

// boolean decodes true or false at b[i].
func boolean(b []byte, i int, dst *bool) (int, bool) {
	if end, ok := jsonscan.Literal(b, i, "true"); ok {
		*dst = true
		return end, true
	}
	end, ok := jsonscan.Literal(b, i, "false")
	if ok {
		*dst = false
	}
	return end, ok
}

// timestamp decodes the time at b[i] as metav1.Time.UnmarshalJSON does (a
// string, time.RFC3339); a null is declined (encoding/json sets a pointer
// to nil for it, and a metav1.Time to the zero time).
func timestamp(b []byte, i int, dst *metav1.Time) (int, bool) {
	s, end, ok := plainBytes(b, i)
	if !ok {
		return end, false
	}
	t, err := time.Parse(time.RFC3339, string(s))
	if err != nil {
		return i, false
	}
	dst.Time = t.Local()
	return end, true
}

// timePointer is timestamp into a new *metav1.Time.
func timePointer(b []byte, i int, dst **metav1.Time) (int, bool) {
	t := new(metav1.Time)
	end, ok := timestamp(b, i, t)
	if ok {
		*dst = t
	}
	return end, ok
}

// fastItem decodes the item's metadata into m, its status into st and its
// spec with spec.
func fastItem(item []byte, m *listedMeta, st *listedStatus, spec func(b []byte, i, depth int) (int, bool)) bool {
	i := jsonscan.Space(item, 0)
	end, ok := memberFields(item, i, 1, itemMembers, func(k int, b []byte, i, depth int) (int, bool) {
		switch k {
		case 0:
			return m.fast(b, i, depth+1)
		case 1:
			return spec(b, i, depth+1)
		}
		return memberFields(b, i, depth+1, statusMembers, func(_ int, b []byte, i, _ int) (int, bool) {
			return timePointer(b, i, &st.RepositoryNamedAt)
		})
	})
	return ok && jsonscan.Space(item, end) == len(item)
}

func (m *listedMeta) fast(b []byte, i, depth int) (int, bool) {
	return memberFields(b, i, depth, metaMembers, func(k int, b []byte, i, depth int) (int, bool) {
		switch k {
		case 0:
			return plainString(b, i, &m.Name)
		case 1:
			return plainString(b, i, &m.Namespace)
		case 2:
			return timestamp(b, i, &m.CreationTimestamp)
		}
		a := &m.Annotations
		return memberFields(b, i, depth+1, annotationMembers, func(_ int, b []byte, i, _ int) (int, bool) {
			return plainString(b, i, &a.Repository)
		})
	})
}

func (it *listedPullRequest) fast(item []byte) bool {
	s := &it.Spec
	return fastItem(item, &it.Metadata, &it.Status, func(b []byte, i, depth int) (int, bool) {
		return memberFields(b, i, depth, pullRequestMembers, func(k int, b []byte, i, _ int) (int, bool) {
			switch k {
			case 0:
				return plainString(b, i, &s.Repository)
			case 1:
				return integer(b, i, &s.RepositoryID)
			case 2:
				return plainString(b, i, &s.Status)
			case 3:
				return boolean(b, i, &s.Merged)
			case 4:
				return timePointer(b, i, &s.OpenedAt)
			case 5:
				return timePointer(b, i, &s.MergedAt)
			case 6:
				return timePointer(b, i, &s.FirstReviewAt)
			}
			return timePointer(b, i, &s.FirstApprovalAt)
		})
	})
}

func (it *listedBranch) fast(item []byte) bool {
	s := &it.Spec
	return fastItem(item, &it.Metadata, &it.Status, func(b []byte, i, depth int) (int, bool) {
		return memberFields(b, i, depth, branchMembers, func(k int, b []byte, i, _ int) (int, bool) {
			switch k {
			case 0:
				return plainString(b, i, &s.Repository)
			case 1:
				return integer(b, i, &s.RepositoryID)
			}
			return plainString(b, i, &s.State)
		})
	})
}

func (it *listedDeployment) fast(item []byte) bool {
	s := &it.Spec
	return fastItem(item, &it.Metadata, &it.Status, func(b []byte, i, depth int) (int, bool) {
		return memberFields(b, i, depth, deploymentMembers, func(k int, b []byte, i, depth int) (int, bool) {
			switch k {
			case 0:
				return plainString(b, i, &s.Repository)
			case 1:
				return integer(b, i, &s.RepositoryID)
			case 2:
				return plainString(b, i, &s.Environment)
			case 3:
				return timePointer(b, i, &s.FirstSuccessAt)
			case 4:
				return timePointer(b, i, &s.FirstFailureAt)
			}
			return jsonscan.Elements(b, i, depth+1, func(b []byte, i, depth int) (int, bool) {
				s.Changes = append(s.Changes, stablev1.DeployedChange{})
				c := &s.Changes[len(s.Changes)-1]
				return memberFields(b, i, depth+1, changeMembers, func(k int, b []byte, i, _ int) (int, bool) {
					if k == 0 {
						return integer(b, i, &c.Number)
					}
					return timePointer(b, i, &c.OpenedAt)
				})
			})
		})
	})
}
