package githubevent

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors of Validate; IsInvalid is true for both, so they answer 400.
var (
	// ErrBadName: a branch name GitHub could never have sent.
	ErrBadName = fmt.Errorf("%w: invalid branch name", ErrMismatch)
	// ErrFromTheFuture: the delivery's ordering time is further ahead of
	// the recorder's clock than the allowed skew. Accepting it would let one
	// forged delivery freeze an object: every later real delivery would be
	// "older" and never move it again.
	ErrFromTheFuture = fmt.Errorf("%w: ordering time is in the future", ErrMalformed)
)

// DefaultMaxClockSkew is how far ahead of the recorder's clock a delivery's
// ordering time may be. GitHub's clock and ours differ by seconds; an hour
// leaves room for a badly set node clock without letting a forged
// "updated_at: 2099" freeze an object for ever.
const DefaultMaxClockSkew = time.Hour

// Validate checks what Parse leaves to the recorder's policy: the branch name
// is one git and GitHub accept, and ch.OccurredAt is at most maxSkew after
// now. Ignored changes pass. Errors wrap ErrBadName or ErrFromTheFuture.
func Validate(ch Change, now time.Time, maxSkew time.Duration) error {
	if ch.Ignored != "" {
		return nil
	}
	if ch.Branch != nil {
		if err := checkBranch(ch.Branch.Name); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrBadName, ch.Branch.Name, err)
		}
	}
	if ahead := ch.OccurredAt.Sub(now); ahead > maxSkew {
		return fmt.Errorf("%w: %s (from %s) is %s ahead of the recorder's clock, more than the allowed %s",
			ErrFromTheFuture, ch.OccurredAt.UTC().Format(time.RFC3339), ch.TimeSource, ahead.Truncate(time.Second), maxSkew)
	}
	return nil
}

// checkBranch applies git's ref name rules (git check-ref-format) that
// matter here: no control characters (NUL, CR, LF, tab, DEL), no
// whitespace (stricter than git: no Unicode space or line separator either,
// so no name can break a log line or a label),
// none of ~ ^ : ? * [ \, no "..", no "@{", not "@", no component starting
// with '.' or ending in ".lock", no empty component, no trailing '.' and
// valid UTF-8. GitHub refuses such names when they are pushed, so a
// delivery carrying one is forged or broken.
func checkBranch(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if !utf8.ValidString(name) {
		return errors.New("not UTF-8")
	}
	for i, r := range name {
		if unicode.IsControl(r) || unicode.IsSpace(r) || strings.ContainsRune("~^:?*[\\", r) {
			return fmt.Errorf("%q at byte %d", r, i)
		}
	}
	switch {
	case name == "@":
		return errors.New(`"@"`)
	case strings.Contains(name, ".."), strings.Contains(name, "@{"):
		return errors.New(`contains ".." or "@{"`)
	case strings.HasSuffix(name, "."), strings.HasSuffix(name, "/"), strings.HasPrefix(name, "/"):
		return errors.New("ends in '.' or begins or ends in '/'")
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return fmt.Errorf("component %q is empty, begins with '.' or ends in .lock", c)
		}
	}
	return nil
}
