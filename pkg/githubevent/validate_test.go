package githubevent

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
)

func TestCheckRepository_RefusesWhatGitHubNeverNames(t *testing.T) {
	tests := []struct {
		repo string
		ok   bool
	}{
		{"Codertocat/Hello-World", true},
		{"octo-org/octo.repo_1", true},
		{"managed_user/x", true},
		{"acme/api\x00", false},
		{"acme/api\r\nX-Injected: 1", false},
		{"acme/a\tb", false},
		{"acme/a b", false},
		{"acme/a\x7f", false},
		{"ac me/api", false},
		{"acme/ünï", false},
		{"acme/api\u00a0", false},
		{"acme/..", false},
		{"acme.org/api", false},
		{`acme/"api"`, false},
	}
	for _, tt := range tests {
		t.Run(strings.ToValidUTF8(tt.repo, "?"), func(t *testing.T) {
			err := checkRepository(tt.repo)
			if (err == nil) != tt.ok {
				t.Fatalf("checkRepository(%q) = %v, want ok=%v", tt.repo, err, tt.ok)
			}
			if err != nil && !IsInvalid(err) {
				t.Fatalf("%v does not answer 400", err)
			}
		})
	}
}

func TestValidate_RefusesBranchNamesGitRefuses(t *testing.T) {
	tests := []struct {
		branch string
		ok     bool
	}{
		{"main", true},
		{"feature/add-readme", true},
		{"fëature/ünïcødé-🚀", true},
		{"UPPER_case", true},
		{"release-1.2.3", true},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"a b", false},
		{"a..b", false},
		{".hidden", false},
		{"x/.hidden", false},
		{"x.lock", false},
		{"x/", false},
		{"/x", false},
		{"a//b", false},
		{"x.", false},
		{"@", false},
		{"a@{1}", false},
		{"a~1", false},
		{"a^", false},
		{"a:b", false},
		{"a?", false},
		{"a*", false},
		{"a[b", false},
		{`a\b`, false},
		{"\xff", false},
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(strings.ToValidUTF8(tt.branch, "?"), func(t *testing.T) {
			ch := Change{OccurredAt: now, Branch: &BranchChange{Name: tt.branch}}
			err := Validate(ch, now, time.Hour)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(branch %q) = %v, want ok=%v", tt.branch, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrBadName) || !IsInvalid(err)) {
				t.Fatalf("%v is not ErrBadName answered 400", err)
			}
		})
	}
}

func TestValidate_RefusesOrderingTimesBeyondTheSkew(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		at   time.Time
		skew time.Duration
		ok   bool
	}{
		{"now", now, time.Hour, true},
		{"long ago", now.AddDate(-5, 0, 0), time.Hour, true},
		{"a minute ahead", now.Add(time.Minute), time.Hour, true},
		{"exactly the skew ahead", now.Add(time.Hour), time.Hour, true},
		{"a second beyond the skew", now.Add(time.Hour + time.Second), time.Hour, false},
		{"forged updated_at 2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour, false},
		{"a smaller configured skew", now.Add(2 * time.Minute), time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := Change{OccurredAt: tt.at, TimeSource: TimeFromUpdatedAt, PullRequest: &PullRequestChange{Number: 1}}
			err := Validate(ch, now, tt.skew)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(at %s, skew %s) = %v, want ok=%v", tt.at, tt.skew, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrFromTheFuture) || !IsInvalid(err)) {
				t.Fatalf("%v is not ErrFromTheFuture answered 400", err)
			}
		})
	}
	ignored := Change{Ignored: "ping", OccurredAt: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := Validate(ignored, now, time.Hour); err != nil {
		t.Errorf("an ignored delivery is refused: %v", err)
	}
}

// FuzzValidate_AcceptedNamesHaveNoControlCharactersOrSpace: whatever a
// delivery carries, an accepted repository or branch name is printable.
func FuzzValidate_AcceptedNamesHaveNoControlCharactersOrSpace(f *testing.F) {
	for _, s := range []string{"acme/api", "a\x00/b", "o/r\n", "main", "feature/x y", "a\u2028b"} {
		f.Add(s, s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, repo, branch string) {
		bad := func(s string) bool {
			return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) })
		}
		if checkRepository(repo) == nil && bad(repo) {
			t.Fatalf("repository %q accepted", repo)
		}
		if Validate(Change{OccurredAt: now, Branch: &BranchChange{Name: branch}}, now, time.Hour) == nil && bad(branch) {
			t.Fatalf("branch %q accepted", branch)
		}
	})
}
