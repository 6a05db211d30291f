package v1

import (
	"strings"
	"testing"
)

func TestValidateRepository_AcceptsOnlyGitHubsNames(t *testing.T) {
	tests := []struct {
		repo string
		ok   bool
	}{
		{"acme/api", true},
		{"Octo-Cat_1/hello.world", true},
		{"acme/" + strings.Repeat("a", MaxRepositoryLength-5), true},
		{"acme/" + strings.Repeat("a", MaxRepositoryLength-4), false},
		{"", false},
		{"acme", false},
		{"acme/", false},
		{"/api", false},
		{"acme/api/x", false},
		{"acme/a b", false},
		{"acme/a\tb", false},
		{"acme/a\nb", false},
		{"acme/a\x00b", false},
		{"acme/a\x7fb", false},
		{"ac.me/api", false},
		{"acme/ápi", false},
		{"acme/..", false},
	}
	for _, tt := range tests {
		if err := ValidateRepository(tt.repo); (err == nil) != tt.ok {
			t.Errorf("ValidateRepository(%q) = %v, want ok=%v", tt.repo, err, tt.ok)
		}
	}
}
