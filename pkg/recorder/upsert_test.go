package recorder

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// Every subject a change can have is recorded, delivered and reconciled.
func TestSubjects_EverySubjectHasItsRules(t *testing.T) {
	for _, s := range []githubevent.Subject{githubevent.SubjectPullRequest, githubevent.SubjectBranch,
		githubevent.SubjectReview, githubevent.SubjectDeployment} {
		if rules, ok := subjects[s]; !ok || rules.deliver == nil || rules.reconcile == nil {
			t.Errorf("subject %q has no rules", s)
		}
	}
	if _, ok := subjects[githubevent.SubjectNone]; ok {
		t.Error("a change about nothing has rules")
	}
}

// The engine derives every kind's status from its annotations alone (and
// a pull request's observedUpdatedAt from its spec), and tells a status the
// API server kept from one it dropped (a status subresource).
func TestObjectKind_DerivesTheStatusAndSeesWhetherItWasStored(t *testing.T) {
	applied := func(m *metav1.ObjectMeta) {
		setAnnotation(m, AnnotationLastAppliedDelivery, "guid")
		setAnnotation(m, AnnotationLastAppliedAction, "opened")
	}
	updated := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	pr := &stablev1.PullRequest{Spec: stablev1.PullRequestSpec{UpdatedAt: &updated}}
	b := &stablev1.Branch{}
	d := &stablev1.GitHubDeployment{}
	applied(&pr.ObjectMeta)
	applied(&b.ObjectMeta)
	applied(&d.ObjectMeta)

	tests := []struct {
		name string
		// derive derives the object's status for generation 3, the stored
		// one is that object as the API server answered a write that kept
		// the status, dropped the status, or kept it without change.
		derive  func() recordedStatus
		stored  func() (kept, dropped, same bool)
		derived func() bool
	}{
		{"PullRequest",
			func() recordedStatus { pullRequests.derive(pr, 3); return pullRequests.status(pr) },
			func() (bool, bool, bool) {
				return pullRequests.statusStored(pr, pr.DeepCopy()), pullRequests.statusStored(pr, &stablev1.PullRequest{}),
					pullRequests.sameContent(pr, pr.DeepCopy())
			},
			func() bool { return pr.Status.ObservedUpdatedAt.Equal(&updated) }},
		{"Branch",
			func() recordedStatus { branches.derive(b, 3); return branches.status(b) },
			func() (bool, bool, bool) {
				return branches.statusStored(b, b.DeepCopy()), branches.statusStored(b, &stablev1.Branch{}),
					branches.sameContent(b, b.DeepCopy())
			},
			func() bool { return true }},
		{"GitHubDeployment",
			func() recordedStatus { deployments.derive(d, 3); return deployments.status(d) },
			func() (bool, bool, bool) {
				return deployments.statusStored(d, d.DeepCopy()), deployments.statusStored(d, &stablev1.GitHubDeployment{}),
					deployments.sameContent(d, d.DeepCopy())
			},
			func() bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.derive()
			if *s.observedGeneration != 3 || *s.lastDeliveryID != "guid" || *s.lastAction != "opened" {
				t.Errorf("status says generation %d, delivery %q, action %q", *s.observedGeneration, *s.lastDeliveryID, *s.lastAction)
			}
			c := meta.FindStatusCondition(*s.conditions, stablev1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != 3 || c.Message != "reflects delivery guid" {
				t.Errorf("Ready condition %+v", c)
			}
			if !tt.derived() {
				t.Error("the kind's own status fields were not derived")
			}
			kept, dropped, same := tt.stored()
			if !kept || dropped || !same {
				t.Errorf("statusStored kept %v, dropped %v; sameContent %v", kept, dropped, same)
			}
		})
	}
}

// The repository's labels are built in one place: objects, Events and the
// selectors that find them all agree.
func TestRepositoryLabels_ObjectsAndEventsCarryTheSame(t *testing.T) {
	var m metav1.ObjectMeta
	identify(&m, "Octo-Org/hello.world")
	want := repositoryLabels("Octo-Org/hello.world")
	if len(want) != 2 || len(m.Labels) != 2 {
		t.Fatalf("labels %v, want %v", m.Labels, want)
	}
	for k, v := range want {
		if m.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, m.Labels[k], v)
		}
	}
	if m.Annotations[stablev1.AnnotationRepository] != "Octo-Org/hello.world" {
		t.Errorf("annotations %v", m.Annotations)
	}
}
