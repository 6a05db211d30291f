package recorder

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// recordDeployment records a deployment or deployment_status delivery on
// the GitHubDeployment of (repository, deployment id), with the generic
// upsert (exactly once by delivery id, replays refused). Once the
// deployment has succeeded, the lead time attribution of its environment is
// brought up to date (leadtime.go).
func (r *Recorder) recordDeployment(ctx context.Context, ch githubevent.Change, digest string) (corev1.ObjectReference, upsertResult, error) {
	d := ch.Deployment
	k := deploymentKind(ch)
	names := objectNames{
		name:     naming.DeploymentName(ch.Repository, d.ID),
		identity: deploymentIdentity(ch.Repository, d.ID),
	}
	obj, res, err := upsert(ctx, r, r.opts.Gitpulse.StableV1().GitHubDeployments(r.opts.Namespace), k, names, ch, digest)
	if err != nil {
		return corev1.ObjectReference{}, res, err
	}
	// After the write, so that a pull request merged concurrently is seen
	// here or sees this success itself (leadtime.go). Also when an earlier
	// attempt wrote the object: it may have failed right after.
	if !res.replayed && obj.Spec.FirstSuccessAt != nil {
		if err := r.ship(ctx, ch.Repository, obj.Spec.Environment); err != nil {
			return corev1.ObjectReference{}, res, err
		}
	}
	return reference(githubevent.KindGitHubDeployment, &obj.ObjectMeta), res, nil
}

// deploymentKind is what a GitHubDeployment does in upsert, for change ch.
func deploymentKind(ch githubevent.Change) objectKind[*stablev1.GitHubDeployment] {
	return objectKind[*stablev1.GitHubDeployment]{
		apply:  func(o *stablev1.GitHubDeployment) bool { return applyDeployment(o, ch) },
		derive: deriveDeploymentStatus,
		sameState: func(a, b *stablev1.GitHubDeployment) bool {
			x, y := a.Spec, b.Spec
			x.StatusCount, y.StatusCount = 0, 0
			return equality.Semantic.DeepEqual(x, y)
		},
		sameContent: func(a, b *stablev1.GitHubDeployment) bool {
			return equality.Semantic.DeepEqual(a.Spec, b.Spec) && equality.Semantic.DeepEqual(a.Status, b.Status)
		},
		statusStored: func(sent, got *stablev1.GitHubDeployment) bool {
			return statusStored(sent.Status.ObservedGeneration, got.Status.ObservedGeneration,
				sent.Status.LastDeliveryID, got.Status.LastDeliveryID, got.Status.Conditions)
		},
		identity: func(o *stablev1.GitHubDeployment) string {
			return deploymentIdentity(o.Spec.Repository, o.Spec.DeploymentID)
		},
		kind: githubevent.KindGitHubDeployment,
		// Deliveries about one deployment are few: always decide on the
		// object read live rather than create first.
		isNew: func(githubevent.Change) bool { return false },
	}
}

func deploymentIdentity(repository string, id int64) string {
	return fmt.Sprintf("%q deployment %d", repository, id)
}

// applyDeployment moves o to what ch says, ordering two things separately,
// both by GitHub's timestamps:
//
//   - the deployment's own fields (environment, ref, SHA, task, creator,
//     created time) by deployment.updated_at, which both delivery types
//     carry;
//   - the latest state by the status's time (updated_at, else created_at),
//     ties broken by the status id (GitHub's ids grow), so a late "pending"
//     never hides a "success".
//
// The first success and first failure times are the earliest seen (order
// does not matter), and statusCount counts every distinct status (by id).
// It reports whether anything but the count moved.
func applyDeployment(o *stablev1.GitHubDeployment, ch githubevent.Change) bool {
	d := ch.Deployment
	identify(&o.ObjectMeta, ch.Repository)
	setAnnotation(&o.ObjectMeta, stablev1.AnnotationEnvironment, d.Environment)
	setLabel(&o.ObjectMeta, stablev1.LabelDeploymentID, strconv.FormatInt(d.ID, 10))
	s := &o.Spec
	s.Repository, s.DeploymentID = ch.Repository, d.ID
	moved := false
	at := d.UpdatedAt
	if at.IsZero() {
		at = d.CreatedAt
	}
	if s.Environment == "" || (!at.IsZero() && newer(at, s.UpdatedAt)) {
		s.Environment, s.Ref, s.SHA, s.Task, s.Creator = d.Environment, d.Ref, d.SHA, d.Task, d.Creator
		s.CreatedAt, s.UpdatedAt = timeOrNil(d.CreatedAt), timeOrNil(at)
		moved = true
	}
	if s.State == "" {
		s.State = stablev1.DeploymentStateCreated
	}
	if st := d.Status; st != nil {
		// Once per status id (counted.go): a status also read by a
		// reconcile pass's backfill is not counted twice.
		if countOnce(&o.ObjectMeta, AnnotationCountedStatuses, st.ID, 0) {
			s.StatusCount++
		}
		if s.StateAt == nil || st.At.After(s.StateAt.Time) || (st.At.Equal(s.StateAt.Time) && st.ID >= s.StateID) {
			s.State, s.StateAt, s.StateID = st.State, timeOrNil(st.At), st.ID
			moved = true
		}
		switch {
		case st.State == stablev1.DeploymentStateSuccess:
			moved = earliest(&s.FirstSuccessAt, st.At) || moved
		case stablev1.IsDeploymentFailure(st.State):
			moved = earliest(&s.FirstFailureAt, st.At) || moved
		}
	}
	if moved {
		markApplied(&o.ObjectMeta, ch)
	}
	return moved
}

func deriveDeploymentStatus(o *stablev1.GitHubDeployment, generation int64) {
	s := &o.Status
	s.ObservedGeneration = generation
	s.LastDeliveryID = o.Annotations[AnnotationLastAppliedDelivery]
	s.LastAction = o.Annotations[AnnotationLastAppliedAction]
	meta.SetStatusCondition(&s.Conditions, readyCondition(generation, s.LastDeliveryID))
}
