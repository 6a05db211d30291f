package reconcile

import (
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestRedeliver_AnAttemptSucceededWhenGitHubSaysOKOrA2xx(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status string
		code   int
		want   bool
	}{
		{name: "OK", status: "OK", code: 200, want: true},
		{name: "202 Accepted (the adapter's answer)", status: "Accepted", code: 202, want: true},
		{name: "204 No Content", code: 204, want: true},
		{name: "299: the last of 2xx", code: 299, want: true},
		{name: "OK without a code", status: "OK", want: true},
		{name: "300: a redirect is not a delivery", code: 300},
		{name: "199", code: 199},
		{name: "502 Bad Gateway", status: "Bad Gateway", code: 502},
		{name: "no answer (timed out): GitHub's code 0", status: "timed out"},
		{name: "nothing known"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &github.HookDelivery{}
			if tt.status != "" {
				d.Status = github.String(tt.status)
			}
			if tt.code != 0 {
				d.StatusCode = github.Int(tt.code)
			}
			if got := succeeded(d); got != tt.want {
				t.Errorf("succeeded(%q, %d) = %v, want %v", tt.status, tt.code, got, tt.want)
			}
		})
	}
}
