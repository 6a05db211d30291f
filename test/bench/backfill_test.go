package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/liatrio/gitpulse/internal/fakegithub"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/reconcile"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// backfillPRs is the repository the first backfill reads: 2,000 pull
// requests in the window, each with one to three reviews.
const backfillPRs = 2000

// benchBackfill counts the GitHub requests of a repository's first
// backfill: every request of every pass (default bounds: 20 s, 300
// requests) until a pass ends ok, in a namespace of its own on the
// stack's API server, against the fake GitHub (REST and GraphQL). Then
// one more pass with nothing changed. Requests are counted, not timed;
// the wall time is printed for what it is (shared cores).
func benchBackfill(b *testing.B) {
	ctx := context.Background()
	cfg := stack.ControlPlane.Config()
	ns := fmt.Sprintf("gitpulse-backfill-%d", seq.Add(1))
	if _, err := stack.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stack.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) }()

	const token, repo = "ghp_bench", "acme/monorepo"
	gh := fakegithub.New(fakegithub.Options{Token: token})
	defer gh.Close()
	base := time.Now().Add(-80 * 24 * time.Hour).Truncate(time.Second)
	for n := 1; n <= backfillPRs; n++ {
		at := base.Add(time.Duration(n) * 50 * time.Minute) // spread over ~70 days
		pr := &github.PullRequest{Number: github.Int(n), Title: github.String(fmt.Sprintf("change %d", n)),
			State: github.String("closed"), User: &github.User{Login: github.String(fmt.Sprintf("dev-%d", n%40))},
			Head:      &github.PullRequestBranch{Ref: github.String(fmt.Sprintf("feature-%d", n)), SHA: github.String(fmt.Sprintf("%040d", n))},
			Base:      &github.PullRequestBranch{Ref: github.String("main")},
			HTMLURL:   github.String(fmt.Sprintf("https://github.com/%s/pull/%d", repo, n)),
			CreatedAt: &github.Timestamp{Time: at.Add(-6 * time.Hour)}, UpdatedAt: &github.Timestamp{Time: at},
			ClosedAt: &github.Timestamp{Time: at}, MergedAt: &github.Timestamp{Time: at},
			MergeCommitSHA: github.String(fmt.Sprintf("m%039d", n))}
		gh.SetPullRequest(repo, pr)
		for i := 0; i <= n%3; i++ {
			state := "COMMENTED"
			if i == n%3 {
				state = "APPROVED"
			}
			gh.AddReview(repo, n, &github.PullRequestReview{ID: github.Int64(int64(n*10 + i)), State: github.String(state),
				User:        &github.User{Login: github.String(fmt.Sprintf("dev-%d", (n+i+1)%40))},
				SubmittedAt: &github.Timestamp{Time: at.Add(-time.Duration(5-i) * time.Hour)}})
		}
	}
	for i := 0; i < 30; i++ {
		gh.SetBranch(repo, fmt.Sprintf("feature-%d", backfillPRs-i), fmt.Sprintf("%040d", backfillPRs-i))
	}
	gh.SetBranch(repo, "main", "m")

	if _, err := stack.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "github"},
		Data: map[string][]byte{"accessToken": []byte(token), "secretToken": []byte("s")}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	src := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sources.knative.dev/v1alpha1", "kind": "GitHubSource",
		"metadata": map[string]any{"name": "monorepo", "namespace": ns},
		"spec": map[string]any{"ownerAndRepository": repo, "githubAPIURL": gh.URL(),
			"eventTypes":  []any{"pull_request", "pull_request_review"},
			"accessToken": map[string]any{"secretKeyRef": map[string]any{"name": "github", "key": "accessToken"}},
			"secretToken": map[string]any{"secretKeyRef": map[string]any{"name": "github", "key": "secretToken"}}},
	}}
	if _, err := dyn.Resource(reconcile.GitHubSources).Namespace(ns).Create(ctx, src, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec, err := recorder.New(recorder.Options{Kube: stack.Kube, Gitpulse: versioned.NewForConfigOrDie(cfg), Namespace: ns,
		Instance: "bench-backfill", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	r, err := reconcile.New(reconcile.Options{Kube: stack.Kube, Dynamic: dyn, Recorder: rec, Namespace: ns, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	passes, reconciled := 0, 0
	for ; passes < 60; passes++ {
		rep, err := r.Pass(ctx)
		if err != nil {
			b.Fatal(err)
		}
		reconciled += rep.Reconciled
		if len(rep.Errors) > 0 {
			b.Fatalf("pass %d: %v", passes+1, rep.Errors)
		}
		if rep.Results[reconcile.ResultOK] == 1 {
			passes++
			break
		}
	}
	wall := time.Since(start)
	requests, points := gh.Requests(), 5000-gh.GraphQLRemaining()
	prs, err := versioned.NewForConfigOrDie(cfg).StableV1().PullRequests(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	reviewed := 0
	for _, p := range prs.Items {
		if p.Spec.ReviewCount > 0 && p.Spec.ApprovalCount == 1 {
			reviewed++
		}
	}
	if len(prs.Items) != backfillPRs || reviewed != backfillPRs {
		b.Fatalf("after %d passes: %d PullRequests, %d with their reviews; want %d", passes, len(prs.Items), reviewed, backfillPRs)
	}
	// The exact line of the target, then the details.
	fmt.Printf("backfill first pass   %d pull requests   %d GitHub requests   %.4f per pull request\n",
		backfillPRs, requests, float64(requests)/backfillPRs)
	record("backfill first pass", "%d pull requests   %d GitHub requests   %.4f per pull request   (%d passes, %d GraphQL points, %d REST requests; %d objects, %.1f s wall on shared cores)",
		backfillPRs, requests, float64(requests)/backfillPRs, passes, points, requests-int64(gh.GraphQLQueries()["/graphql"]), reconciled, wall.Seconds())

	before, before304, beforeCore, beforePoints := gh.Requests(), gh.NotModified(), gh.Remaining(), gh.GraphQLRemaining()
	rep, err := r.Pass(ctx)
	if err != nil || rep.Results[reconcile.ResultOK] != 1 {
		b.Fatalf("the pass after: %+v %v", rep, err)
	}
	record("backfill next pass", "nothing changed: %d GitHub requests, %d of them 304, %d REST and %d GraphQL points spent, %d objects changed",
		gh.Requests()-before, gh.NotModified()-before304, beforeCore-gh.Remaining(), beforePoints-gh.GraphQLRemaining(), rep.Reconciled)
}
