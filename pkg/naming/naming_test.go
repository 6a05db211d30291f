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
		{"simple pull request", func() string { return PullRequestName("liatrio/gitpulse", 42) }},
		{"upper case repository", func() string { return PullRequestName("Liatrio/GitPulse", 7) }},
		{"branch with slashes", func() string { return BranchName("liatrio/gitpulse", "feature/x") }},
		{"branch with dots and unicode", func() string { return BranchName("o/r", "release-1.2/ünïcödé") }},
		{"very long branch", func() string { return BranchName("owner/repo", long) }},
		{"only invalid characters", func() string { return BranchName("", "///") }},
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
		{BranchName("o/r", "a/b"), BranchName("o/r", "a.b")},
		{BranchName("o/r", "Feature"), BranchName("o/r", "feature")},
		{PullRequestName("a-b/c", 1), PullRequestName("a/b-c", 1)},
		{BranchName("o/r", strings.Repeat("x", 100)+"1"), BranchName("o/r", strings.Repeat("x", 100)+"2")},
	}
	for _, p := range pairs {
		if p[0] == p[1] {
			t.Errorf("collision: %q", p[0])
		}
	}
}

func TestNames_Examples(t *testing.T) {
	tests := []struct{ got, want string }{
		{BranchName("o/r", "main"), "o-r-main-"},
		{PullRequestName("liatrio/gitpulse", 42), "liatrio-gitpulse-pr-42-"},
		{EventName("abc"), "delivery-abc"},
		{LabelValue("gitpulse"), "gitpulse"},
		{LabelValue("has/slash"), "has-slash-"},
	}
	for _, tt := range tests {
		if !strings.HasPrefix(tt.got, tt.want) {
			t.Errorf("got %q, want prefix %q", tt.got, tt.want)
		}
	}
}

func TestLabelValue_IsAlwaysValid(t *testing.T) {
	for _, in := range []string{"", "owner", "Owner.Name_x", strings.Repeat("a", 64), "-x-", "ü"} {
		got := LabelValue(in)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q: %v", in, got, errs)
		}
	}
}

func FuzzBranchName(f *testing.F) {
	for _, s := range []string{"main", "feature/x", "ü/ß", "..", strings.Repeat("/", 300)} {
		f.Add("owner/repo", s)
	}
	f.Fuzz(func(t *testing.T, repo, branch string) {
		got := BranchName(repo, branch)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Fatalf("BranchName(%q, %q) = %q: %v", repo, branch, got, errs)
		}
	})
}
