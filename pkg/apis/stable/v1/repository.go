package v1

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// MaxRepositoryLength bounds a repository's owner/name (also the CRDs'
// spec.repository maxLength, a kubebuilder marker in types.go).
const MaxRepositoryLength = 140

// ValidateRepository is the one check of a repository's GitHub full name,
// shared by the recorder (which refuses a delivery naming anything else) and
// the metrics function (which never emits anything else as a label value):
// "owner/name", both parts non-empty, at most MaxRepositoryLength bytes, and
// GitHub's characters — an owner is letters, digits, '-' and '_' (managed
// users' "login_shortcode"), a repository letters, digits, '.', '-' and '_'
// (GitHub replaces anything else when the repository is created). So no
// control character, whitespace or non-ASCII letter ever reaches an object, a
// label or a metric.
func ValidateRepository(fullName string) error {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("%q is not owner/name", fullName)
	}
	if len(fullName) > MaxRepositoryLength {
		return fmt.Errorf("%q is longer than %d characters", fullName, MaxRepositoryLength)
	}
	for _, part := range []struct {
		what, value, extra string
	}{{"owner", owner, "-_"}, {"name", name, ".-_"}} {
		for i, r := range part.value {
			ok := r < unicode.MaxASCII && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
				strings.ContainsRune(part.extra, r))
			if !ok {
				return fmt.Errorf("%q: %s has %q at byte %d", fullName, part.what, r, i)
			}
		}
	}
	if name == "." || name == ".." {
		return errors.New("repository name is . or ..")
	}
	return nil
}
