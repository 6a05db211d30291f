package metrics

import (
	"bytes"
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// BenchmarkDecodeList_PageOfPullRequests decodes a page of 5,000 pull
// requests as the API server lists them (objectListPageSize) into records,
// as the function's first list does; it reports the time per item. It
// measures; it asserts nothing.
func BenchmarkDecodeList_PageOfPullRequests(b *testing.B) {
	list := &stablev1.PullRequestList{TypeMeta: metav1.TypeMeta{Kind: "PullRequestList", APIVersion: "stable.liatr.io/v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: "4711", Continue: "next"}}
	for i := range objectListPageSize {
		list.Items = append(list.Items, *recordedPullRequest(i))
	}
	body, err := json.Marshal(list)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		page, err := decodeList(bytes.NewReader(body), decodePullRequest)
		if err != nil || len(page.Items) != objectListPageSize {
			b.Fatalf("%d items, %v", len(page.Items), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*objectListPageSize)/1000, "µs/item")
}
