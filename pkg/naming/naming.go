// Package naming derives deterministic Kubernetes names for gitpulse objects
// from GitHub identities, so that every delivery about one pull request or
// branch lands on the same object, and every delivery id on one Event.
//
// An object name is a readable prefix followed by a hash of the object's
// identity. The prefix is decoration (lower-cased, sanitised, shortened) and
// may be shared by different identities; the hash is what makes names
// distinct. It is taken over an unambiguous encoding of the identity — every
// part length-prefixed, behind a tag naming the kind — so no two distinct
// (repository, branch) or (repository, number) pairs are ever hashed from the
// same bytes ("acme/api" + "gateway-fix" and "acme/api-gateway" + "fix" both
// read "acme-api-gateway-fix", but their encodings differ).
//
// A repository's identity is GitHub's repository id when the delivery says
// it (every real delivery and API read does): it survives renames and
// transfers, which change the full name. The prefix is read from the full
// name the object is created under, and an object's name never changes, so
// after a rename the name computed from a delivery differs from the
// object's in its prefix only; the recorder finds the object by its spec
// (selectable fields) then. Without an id (hand-made deliveries) the
// identity is the full name, as before.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/kmeta"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// MaxNameLength bounds object names. It is the DNS-1123 label limit rather
// than the subdomain limit, so names also fit in label values and in the
// names of Events derived from them.
const MaxNameLength = validation.DNS1123LabelMaxLength

// HashLength is the number of hex digits of the identity hash in an object
// name: 64 bits, so that even a million objects in one namespace have a
// chance of about 3e-8 of any two sharing a hash.
const HashLength = 16

// PullRequestName is the object name of pull request number in repository
// (GitHub's "owner/name") of GitHub id repositoryID (0: unknown, the
// identity is then the name), e.g. "liatrio-gitpulse-pr-42-<hash>".
func PullRequestName(repository string, repositoryID, number int64) string {
	n := strconv.FormatInt(number, 10)
	return objectName(repository+"-pr-"+n, repositoryIdentity("pullrequest", repository, repositoryID, n))
}

// BranchName is the object name of branch in repository of GitHub id
// repositoryID (0: unknown), e.g. "liatrio-gitpulse-feature-x-<hash>" for
// "feature/x".
func BranchName(repository string, repositoryID int64, branch string) string {
	return objectName(repository+"-"+branch, repositoryIdentity("branch", repository, repositoryID, branch))
}

// repositoryIdentity is the identity of an object in a repository: its
// GitHub id when known (tagged "@id", so that it can never be read as a
// name, which always holds a slash), else its full name.
func repositoryIdentity(kind, repository string, repositoryID int64, parts ...string) []byte {
	repo := repository
	if repositoryID > 0 {
		repo = "@" + strconv.FormatInt(repositoryID, 10)
	}
	return identity(kind, append([]string{repo}, parts...)...)
}

// identity is the unambiguous encoding of an object's identity that its
// name's hash is taken over: the kind and then each part as
// "<length>:<bytes>", so a boundary between parts can never be moved.
func identity(kind string, parts ...string) []byte {
	var b strings.Builder
	b.WriteString("gitpulse.v2\x00")
	b.WriteString(kind)
	for _, p := range parts {
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return []byte(b.String())
}

// objectName is the readable form of display, shortened so that
// "-<hash of id>" fits in MaxNameLength.
func objectName(display string, id []byte) string {
	sum := sha256.Sum256(id)
	hash := hex.EncodeToString(sum[:])[:HashLength]
	prefix := sanitise(display)
	if max := MaxNameLength - HashLength - 1; len(prefix) > max {
		prefix = strings.TrimRight(prefix[:max], "-")
	}
	if prefix == "" {
		return "x-" + hash
	}
	return prefix + "-" + hash
}

// EventName is the name of the one Event recorded for a delivery. It depends
// on the delivery id alone, so the API server itself refuses a second Event
// for a redelivered id.
func EventName(deliveryID string) string {
	return singleName(stablev1.EventNamePrefix + deliveryID)
}

// sanitise lower-cases raw, replaces every run of characters outside
// [a-z0-9] with one '-' and trims dashes.
func sanitise(raw string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(raw) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// singleName sanitises raw and, when that changed it, appends a short hash
// of raw; kmeta.ChildName limits the length. It is unambiguous for a single
// string (delivery ids, label values) but not for a concatenation of two.
func singleName(raw string) string {
	clean := sanitise(raw)
	if clean == "" {
		clean = "x"
	}
	if clean != raw {
		sum := sha256.Sum256([]byte(raw))
		clean += "-" + hex.EncodeToString(sum[:])[:8]
	}
	return kmeta.ChildName(clean, "")
}
