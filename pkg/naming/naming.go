// Package naming derives deterministic Kubernetes names for gitpulse objects
// from GitHub identities, so that every delivery about one pull request or
// branch lands on the same object, and every delivery id on one Event.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/kmeta"
)

// MaxNameLength bounds object names. It is the DNS-1123 label limit rather
// than the subdomain limit, so names also fit in label values and in the
// names of Events derived from them.
const MaxNameLength = validation.DNS1123LabelMaxLength

// PullRequestName is the object name of pull request number in repository
// (GitHub's "owner/name"), e.g. "liatrio-gitpulse-pr-42".
func PullRequestName(repository string, number int64) string {
	return name(repository + "-pr-" + strconv.FormatInt(number, 10))
}

// BranchName is the object name of branch in repository, e.g.
// "liatrio-gitpulse-feature-x" for "feature/x". Two raw names that sanitise
// alike ("a/b" and "a.b") still get distinct names: the sanitised form is
// suffixed with a hash of the raw one whenever sanitising changed anything.
func BranchName(repository, branch string) string {
	return name(repository + "-" + branch)
}

// EventName is the name of the one Event recorded for a delivery. It depends
// on the delivery id alone, so the API server itself refuses a second Event
// for a redelivered id.
func EventName(deliveryID string) string {
	return name("delivery-" + deliveryID)
}

// LabelValue turns s into a valid label value (at most 63 characters of
// [A-Za-z0-9._-], beginning and ending alphanumeric), keeping it readable.
func LabelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	return name(s)
}

// name lower-cases raw, replaces every run of characters outside [a-z0-9-]
// with one '-', trims dashes, and limits the length with a hash suffix
// (kmeta.ChildName). When sanitising changed raw, a short hash of raw is
// appended so that distinct raw inputs cannot collide.
func name(raw string) string {
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
	clean := strings.Trim(b.String(), "-")
	if clean == "" {
		clean = "x"
	}
	if clean != raw {
		sum := sha256.Sum256([]byte(raw))
		clean += "-" + hex.EncodeToString(sum[:])[:8]
	}
	return kmeta.ChildName(clean, "")
}
