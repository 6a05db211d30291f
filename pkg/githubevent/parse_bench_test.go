package githubevent

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/liatrio/gitpulse/internal/ghsource"
)

// BenchmarkParse_AdapterShapedPayloads measures Parse on what the recorder
// is sent in a cluster: each recorded type's first @octokit/webhooks-examples
// payload (api.github.com) as the GitHubSource receive adapter shapes it.
// The adapter decodes a webhook into its library's structs and sends them
// marshalled again, every member present (internal/ghsource, pinned to the
// real adapter by its differential test): a 28 KB pull_request webhook
// arrives as 21 KB. The benchmarks of test/bench send a far smaller
// pull_request (7 KB as the adapter shapes it), so this is where the cost
// of a real payload is measured (docs/benchmarks.md).
func BenchmarkParse_AdapterShapedPayloads(b *testing.B) {
	for _, name := range []string{"pull_request", "pull_request_review", "push", "create", "delete", "deployment", "deployment_status"} {
		b.Run(name, func(b *testing.B) {
			var e event.Event
			for _, payload := range octokitExamples(b, name) {
				if ev, err := ghsource.FromWebhook("", name, "bench-delivery", payload); err == nil {
					e = ev
					break
				}
			}
			if e.Data() == nil {
				b.Fatalf("no %s example the adapter takes", name)
			}
			b.SetBytes(int64(len(e.Data())))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(e, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
