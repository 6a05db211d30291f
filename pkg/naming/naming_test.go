package naming

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNames_AreValidDNS1123LabelsAndDeterministic(t *testing.T) {
	long := strings.Repeat("very-long-branch-name/", 20)
	tests := []struct {
		name string
		got  func() string
	}{
		{"simple pull request", func() string { return PullRequestName("liatrio/gitpulse", 0, 42) }},
		{"upper case repository", func() string { return PullRequestName("Liatrio/GitPulse", 0, 7) }},
		{"branch with slashes", func() string { return BranchName("liatrio/gitpulse", 0, "feature/x") }},
		{"branch with dots and unicode", func() string { return BranchName("o/r", 0, "release-1.2/ünïcödé") }},
		{"very long branch", func() string { return BranchName("owner/repo", 0, long) }},
		{"only invalid characters", func() string { return BranchName("", 0, "///") }},
		{"delivery id", func() string { return EventName("72d3162e-cc78-11e3-81ab-4c9367dc0958") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.got()
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Fatalf("%q is not a DNS-1123 label: %v", got, errs)
			}
			if again := tt.got(); again != got {
				t.Fatalf("not deterministic: %q then %q", got, again)
			}
		})
	}
}

func TestNames_DistinctInputsThatSanitiseAlikeDoNotCollide(t *testing.T) {
	pairs := [][2]string{
		{BranchName("o/r", 0, "a/b"), BranchName("o/r", 0, "a.b")},
		{BranchName("o/r", 0, "Feature"), BranchName("o/r", 0, "feature")},
		{PullRequestName("a-b/c", 0, 1), PullRequestName("a/b-c", 0, 1)},
		{BranchName("o/r", 0, strings.Repeat("x", 100)+"1"), BranchName("o/r", 0, strings.Repeat("x", 100)+"2")},
	}
	for _, p := range pairs {
		if p[0] == p[1] {
			t.Errorf("collision: %q", p[0])
		}
	}
}

func TestNames_IdentitiesThatReadAlikeGetDistinctNames(t *testing.T) {
	// Each pair reads the same once sanitised and joined (names that hashed
	// the joined string made the first pair one object: deleting "fix" in
	// api-gateway marked api's "gateway-fix" deleted).
	tests := []struct {
		name string
		a, b string
	}{
		{"boundary moved between repository and branch", BranchName("acme/api", 0, "gateway-fix"), BranchName("acme/api-gateway", 0, "fix")},
		{"boundary moved across the slash", BranchName("acme/api", 0, "x"), BranchName("acme", 0, "api/x")},
		{"branch named like a pull request", BranchName("acme/api", 0, "pr-1"), PullRequestName("acme/api", 0, 1)},
		{"pull request of a repository ending in -pr-1", PullRequestName("acme/api-pr-1", 0, 2), PullRequestName("acme/api", 0, 12)},
		{"case", BranchName("o/r", 0, "Feature"), BranchName("o/r", 0, "feature")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.a == tt.b {
				t.Fatalf("both are %q", tt.a)
			}
		})
	}
}

func TestNames_Examples(t *testing.T) {
	tests := []struct{ got, want string }{
		{BranchName("o/r", 0, "main"), "o-r-main-"},
		{BranchName("acme/api", 0, "gateway-fix"), "acme-api-gateway-fix-"},
		{PullRequestName("liatrio/gitpulse", 0, 42), "liatrio-gitpulse-pr-42-"},
		{EventName("abc"), "delivery-abc"},
		{BranchName("", 0, "///"), "x-"},
	}
	for _, tt := range tests {
		if !strings.HasPrefix(tt.got, tt.want) {
			t.Errorf("got %q, want prefix %q", tt.got, tt.want)
		}
	}
}

func FuzzBranchName(f *testing.F) {
	for _, s := range []string{"main", "feature/x", "ü/ß", "..", strings.Repeat("/", 300)} {
		f.Add("owner/repo", s)
	}
	f.Fuzz(func(t *testing.T, repo, branch string) {
		got := BranchName(repo, 0, branch)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Fatalf("BranchName(%q, 0, %q) = %q: %v", repo, branch, got, errs)
		}
	})
}

func TestNames_AlwaysEndInTheIdentityHash(t *testing.T) {
	long := strings.Repeat("a", 200)
	for _, got := range []string{
		BranchName("o/r", 0, "main"), BranchName(long+"/r", 0, long), PullRequestName(long+"/x", 0, 1<<62),
		BranchName("", 0, ""), BranchName("ü/ß", 0, "..."),
	} {
		i := strings.LastIndexByte(got, '-')
		if i < 0 || len(got)-i-1 != HashLength || len(got) > MaxNameLength {
			t.Errorf("%q does not end in a %d digit hash within %d characters", got, HashLength, MaxNameLength)
		}
	}
}

// FuzzIdentity_IsUnambiguous: distinct identities are never encoded as the
// same bytes, whatever the parts contain (separators, NUL, digits and
// colons that mimic a length prefix). Distinct names then rest on SHA-256
// alone.
func FuzzIdentity_IsUnambiguous(f *testing.F) {
	f.Add("acme/api", "gateway-fix", "acme/api-gateway", "fix")
	f.Add("a", "1:b", "a\x001:b", "")
	f.Add("o/r", "x\x00", "o/r\x00", "x")
	f.Fuzz(func(t *testing.T, repo1, branch1, repo2, branch2 string) {
		if repo1 == repo2 && branch1 == branch2 {
			return
		}
		if string(identity("branch", repo1, branch1)) == string(identity("branch", repo2, branch2)) {
			t.Fatalf("(%q, %q) and (%q, %q) are encoded alike", repo1, branch1, repo2, branch2)
		}
		if BranchName(repo1, 0, branch1) == BranchName(repo2, 0, branch2) {
			t.Fatalf("(%q, %q) and (%q, %q) share the name %q", repo1, branch1, repo2, branch2, BranchName(repo1, 0, branch1))
		}
	})
}

// FuzzNames_DistinctPullRequestsNeverShareAName mixes repository names and
// numbers that read alike ("a/b-pr-1" number 2, "a/b" number 12).
func FuzzNames_DistinctPullRequestsNeverShareAName(f *testing.F) {
	f.Add("acme/api-pr-1", int64(2), "acme/api", int64(12))
	f.Fuzz(func(t *testing.T, repo1 string, n1 int64, repo2 string, n2 int64) {
		if repo1 == repo2 && n1 == n2 {
			return
		}
		a, b := PullRequestName(repo1, 0, n1), PullRequestName(repo2, 0, n2)
		if a == b {
			t.Fatalf("(%q, %d) and (%q, %d) share the name %q", repo1, n1, repo2, n2, a)
		}
		if errs := validation.IsDNS1123Label(a); len(errs) > 0 {
			t.Fatalf("%q: %v", a, errs)
		}
	})
}

// hashOf is the identity hash a name ends in.
func hashOf(name string) string { return name[strings.LastIndexByte(name, '-')+1:] }

func TestNames_RepositoryIDIsTheIdentityWhenKnown(t *testing.T) {
	tests := []struct {
		name     string
		a, b     string
		sameHash bool
	}{
		{"pull request before and after a rename", PullRequestName("acme/api", 42, 7), PullRequestName("acme/gateway", 42, 7), true},
		{"branch before and after a transfer", BranchName("acme/api", 42, "main"), BranchName("other/api", 42, "main"), true},
		{"deployment before and after a rename", DeploymentName("acme/api", 42, 9), DeploymentName("acme/gateway", 42, 9), true},
		{"two repositories under one name (one renamed away, one created)", PullRequestName("acme/api", 42, 7), PullRequestName("acme/api", 43, 7), false},
		{"the id and the name are distinct identities", PullRequestName("acme/api", 42, 7), PullRequestName("acme/api", 0, 7), false},
		{"a branch and a pull request of one repository id", BranchName("acme/api", 42, "7"), PullRequestName("acme/api", 42, 7), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hashOf(tt.a) == hashOf(tt.b); got != tt.sameHash {
				t.Fatalf("%q and %q: same hash %v, want %v", tt.a, tt.b, got, tt.sameHash)
			}
			if tt.a == tt.b {
				t.Fatalf("the readable prefix should differ or the identity: both %q", tt.a)
			}
		})
	}
	// The prefix is the name's: readable, the id stays out of it.
	if got := PullRequestName("acme/api", 42, 7); !strings.HasPrefix(got, "acme-api-pr-7-") {
		t.Errorf("got %q, want the prefix acme-api-pr-7-", got)
	}
}

// FuzzNames_RepositoryIDIdentitiesNeverShareAName: with the repository's id
// for identity, distinct (id, number) pairs never share a name whatever the
// repository names are (a name may move between ids: renames), and the same
// pair under two names shares the hash.
func FuzzNames_RepositoryIDIdentitiesNeverShareAName(f *testing.F) {
	f.Add("acme/api", int64(42), int64(7), "acme/gateway", int64(43), int64(7))
	f.Fuzz(func(t *testing.T, repo1 string, id1, n1 int64, repo2 string, id2, n2 int64) {
		if id1 <= 0 || id2 <= 0 {
			return
		}
		a, b := PullRequestName(repo1, id1, n1), PullRequestName(repo2, id2, n2)
		if (id1 == id2 && n1 == n2) != (hashOf(a) == hashOf(b)) {
			t.Fatalf("(%q, %d, %d) %q and (%q, %d, %d) %q", repo1, id1, n1, a, repo2, id2, n2, b)
		}
	})
}
