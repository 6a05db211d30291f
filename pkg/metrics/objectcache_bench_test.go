package metrics

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// benchObjects is how many objects of each kind the cache benchmark keeps:
// about what `make bench` records (21,009 objects).
const benchObjects = 20_000

// recordedMeta is an object's metadata as the recorder writes it (the
// callers add the full spec and the status).
func recordedMeta(kind string, i int) metav1.ObjectMeta {
	at := time.Unix(1_790_000_000+int64(i)*60, 0).UTC()
	return metav1.ObjectMeta{
		Name:              fmt.Sprintf("acme-service-%02d-%s-%d", i%50, kind, i),
		Namespace:         "gitpulse",
		UID:               types.UID(fmt.Sprintf("6f1c2a3b-%04x-4d5e-8f90-%012x", i%0xffff, i)),
		ResourceVersion:   strconv.Itoa(100_000 + i),
		Generation:        3,
		CreationTimestamp: metav1.NewTime(at),
	}
}

// recordedBookkeeping is the status's bookkeeping as the recorder writes
// it on the object m is the metadata of.
func recordedBookkeeping(m metav1.ObjectMeta, i int) stablev1.Bookkeeping {
	at := m.CreationTimestamp.Time
	reconciled := metav1.NewTime(at.Add(time.Hour))
	return stablev1.Bookkeeping{
		LastDeliveryID:   fmt.Sprintf("a1b2c3d4-%04x-11ef-9a3b-0242ac120002", i%0xffff),
		RecentDeliveries: fmt.Sprintf("3f9a1c2b7d4e@%s,8e2d4f6a1b3c@%s", strconv.FormatInt(at.Unix(), 36), strconv.FormatInt(at.Unix()+60, 36)),
		ReconciledAt:     &reconciled,
	}
}

// recordedPullRequest, recordedBranch and recordedDeployment are full
// objects as the recorder writes them.
func recordedPullRequest(i int) *stablev1.PullRequest {
	m := recordedMeta("pr", i)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(m.CreationTimestamp.Add(d)); return &t }
	return &stablev1.PullRequest{ObjectMeta: m,
		Spec: stablev1.PullRequestSpec{
			User: "octocat", Branch: fmt.Sprintf("feature/change-%d", i), Status: "closed", ID: strconv.Itoa(900_000_000 + i),
			Repository: fmt.Sprintf("acme/service-%02d", i%50), Number: int64(i), Title: "Make the service faster under load",
			BaseBranch: "main", HeadSHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", URL: fmt.Sprintf("https://github.com/acme/service/pull/%d", i),
			Merged: true, OpenedAt: at(0), ClosedAt: at(3 * time.Hour), MergedAt: at(3 * time.Hour), UpdatedAt: at(3 * time.Hour),
			MergeCommitSHA: "e5bd3914e2e596debea16f433f57875b5b90bcd6", FirstReviewAt: at(time.Hour), FirstApprovalAt: at(2 * time.Hour),
			ReviewCount: 2, ApprovalCount: 1,
		},
		Status: stablev1.PullRequestStatus{Bookkeeping: recordedBookkeeping(m, i), CountedReviews: fmt.Sprintf("%d:s,%d:as", 7_000_000+i, 7_000_001+i)},
	}
}

func recordedBranch(i int) *stablev1.Branch {
	m := recordedMeta("branch", i)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(m.CreationTimestamp.Add(d)); return &t }
	return &stablev1.Branch{ObjectMeta: m,
		Spec: stablev1.BranchSpec{Name: fmt.Sprintf("feature/change-%d", i), State: "created", Repository: fmt.Sprintf("acme/service-%02d", i%50),
			HeadSHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", PushCount: 4, LastPushAt: at(time.Hour), CreatedAt: at(0), UpdatedAt: at(time.Hour)},
		Status: stablev1.BranchStatus{Bookkeeping: recordedBookkeeping(m, i)},
	}
}

func recordedDeployment(i int) *stablev1.GitHubDeployment {
	m := recordedMeta("deployment", i)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(m.CreationTimestamp.Add(d)); return &t }
	return &stablev1.GitHubDeployment{ObjectMeta: m,
		Spec: stablev1.GitHubDeploymentSpec{Repository: fmt.Sprintf("acme/service-%02d", i%50), DeploymentID: int64(500_000_000 + i),
			Environment: "production", Ref: "main", SHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", Task: "deploy", Creator: "octocat",
			CreatedAt: at(0), UpdatedAt: at(10 * time.Minute), State: "success", StateAt: at(10 * time.Minute), StateID: int64(i), StatusCount: 3,
			FirstSuccessAt: at(10 * time.Minute),
			Changes: []stablev1.DeployedChange{
				{Number: int64(i), OpenedAt: at(-3 * time.Hour), MergedAt: at(-time.Hour), By: "sha"},
				{Number: int64(i + 1), OpenedAt: at(-2 * time.Hour), MergedAt: at(-time.Hour), By: "window"},
			}, ChangeCount: 2},
		Status: stablev1.GitHubDeploymentStatus{Bookkeeping: recordedBookkeeping(m, i), CountedStatuses: fmt.Sprintf("%d,%d,%d", 8_000_000+i, 8_000_001+i, 8_000_002+i)},
	}
}

// BenchmarkObjectCache_BytesPerObject fills a store like the object
// informers' (their transform, their indexes) with benchObjects recorded
// objects of each kind and reports the live heap it holds per object. It
// measures; it asserts nothing.
func BenchmarkObjectCache_BytesPerObject(b *testing.B) {
	kinds := []struct {
		name   string
		object func(int) any
	}{
		{"pullrequests", func(i int) any { return recordedPullRequest(i) }},
		{"branches", func(i int) any { return recordedBranch(i) }},
		{"githubdeployments", func(i int) any { return recordedDeployment(i) }},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			var perObject float64
			for b.Loop() {
				perObject = cacheBytesPerObject(b, k.object)
			}
			b.ReportMetric(perObject, "B/object")
		})
	}
}

func cacheBytesPerObject(b *testing.B, object func(int) any) float64 {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	store := newRecordStore(func() {})
	for i := range benchObjects {
		if err := store.Add(object(i)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(store)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / benchObjects
}
