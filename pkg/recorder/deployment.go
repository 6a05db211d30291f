package recorder

// A deployment: its GitHubDeployment object, and every rule for writing a
// deployment or deployment_status delivery, or a deployment read from the
// API with its statuses, into it. Once a deployment has succeeded, the lead
// time attribution of its environment is brought up to date (leadtime.go).

import (
	"context"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// deployments is the GitHubDeployment kind, as the write engine knows it.
var deployments = objectKind[*stablev1.GitHubDeployment]{
	name: githubevent.KindGitHubDeployment,
	client: func(r *Recorder) objectClient[*stablev1.GitHubDeployment] {
		return r.opts.Gitpulse.StableV1().GitHubDeployments(r.opts.Namespace)
	},
	identity: func(o *stablev1.GitHubDeployment) identity {
		return identity{o.Spec.Repository, o.Spec.RepositoryID, strconv.FormatInt(o.Spec.DeploymentID, 10)}
	},
	keyField: "spec.deploymentID",
	list: func(ctx context.Context, r *Recorder, opts metav1.ListOptions) ([]*stablev1.GitHubDeployment, error) {
		l, err := r.opts.Gitpulse.StableV1().GitHubDeployments(r.opts.Namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		return pointers(l.Items), nil
	},
	rename: func(o *stablev1.GitHubDeployment, repository string, id int64) {
		o.Spec.Repository = repository
		if id > 0 {
			o.Spec.RepositoryID = id
		}
	},
	spec: func(o *stablev1.GitHubDeployment) any { return o.Spec },
	status: func(o *stablev1.GitHubDeployment) recordedStatus {
		s := &o.Status
		return recordedStatus{s, &s.Bookkeeping}
	},
}

// deploymentNames are where ch's GitHubDeployment is.
func deploymentNames(ch githubevent.Change) objectNames {
	return objectNames{
		name:     naming.DeploymentName(ch.Repository, ch.RepositoryID, ch.Deployment.ID),
		identity: identity{ch.Repository, ch.RepositoryID, strconv.FormatInt(ch.Deployment.ID, 10)},
	}
}

// deliverDeployment records a deployment or deployment_status delivery on
// the GitHubDeployment of (repository, deployment id), exactly once by
// delivery id, replays refused.
func (r *Recorder) deliverDeployment(ctx context.Context, ch githubevent.Change, digest string) (upsertResult, error) {
	obj, res, err := upsert(ctx, r, deployments, write[*stablev1.GitHubDeployment]{
		names:    deploymentNames(ch),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		digest:   digest,
		apply:    func(o *stablev1.GitHubDeployment) bool { return applyDeployment(o, ch) },
		sameState: func(a, b *stablev1.GitHubDeployment) bool {
			x, y := a.Spec, b.Spec
			x.StatusCount, y.StatusCount = 0, 0
			return equality.Semantic.DeepEqual(x, y)
		},
		// Deliveries about one deployment are few: always decide on the
		// object read live rather than create first.
		isNew: false,
	})
	if err != nil {
		return res, err
	}
	// After the write, so that a pull request merged concurrently is seen
	// here or sees this success itself (leadtime.go). Also when an earlier
	// attempt wrote the object: it may have failed right after.
	if !res.replayed && obj.Spec.FirstSuccessAt != nil {
		if err := r.ship(ctx, obj.Spec.Repository, obj.Spec.RepositoryID, obj.Spec.Environment); err != nil {
			return res, err
		}
	}
	return res, nil
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
		if countOnce(&o.Status.CountedStatuses, st.ID, 0) {
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
		markApplied(deployments.status(o), ch)
	}
	return moved
}

// applyReconciledDeployment moves o to what a deployment and its listed
// statuses (githubevent.FromAPIDeployment) say, with the rules of
// applyDeployment: the deployment's fields by its updated_at, the latest
// state by the status's time then id, first success and failure the
// earliest seen; statusCount counts each status id once (raised to at
// least the ids recorded, never lowered). It reports whether the spec
// moved.
func applyReconciledDeployment(o *stablev1.GitHubDeployment, ch githubevent.Change, now metav1.Time) bool {
	before := o.Spec.DeepCopy()
	d := *ch.Deployment
	d.Status, d.Statuses = nil, nil
	plain := ch
	plain.Deployment = &d
	applyDeployment(o, plain)
	s := &o.Spec
	set := readCounted(o.Status.CountedStatuses)
	for _, st := range ch.Deployment.Statuses {
		set.add(st.ID, 0)
		if s.StateAt == nil || st.At.After(s.StateAt.Time) || (st.At.Equal(s.StateAt.Time) && st.ID >= s.StateID) {
			s.State, s.StateAt, s.StateID = st.State, timeOrNil(st.At), st.ID
		}
		switch {
		case st.State == stablev1.DeploymentStateSuccess:
			earliest(&s.FirstSuccessAt, st.At)
		case stablev1.IsDeploymentFailure(st.State):
			earliest(&s.FirstFailureAt, st.At)
		}
	}
	s.StatusCount = max(s.StatusCount, set.with(0))
	if equality.Semantic.DeepEqual(*before, o.Spec) {
		return false
	}
	set.write(&o.Status.CountedStatuses)
	markApplied(deployments.status(o), ch)
	markReconciled(&o.Status.Bookkeeping, now)
	return true
}

// reconcileDeployment writes a deployment read from the API with its
// statuses (githubevent.FromAPIDeployment).
func (r *Recorder) reconcileDeployment(ctx context.Context, ch githubevent.Change, now metav1.Time) (upsertResult, error) {
	return reconcileWrite(ctx, r, deployments, write[*stablev1.GitHubDeployment]{
		names:    deploymentNames(ch),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		apply:    func(o *stablev1.GitHubDeployment) bool { return applyReconciledDeployment(o, ch, now) },
	})
}
