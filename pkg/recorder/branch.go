package recorder

// A branch: its Branch object, and every rule for writing a create, delete
// or push delivery, or a branch read (or found missing) from the API, into
// it.

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// branches is the Branch kind, as the write engine knows it.
var branches = objectKind[*stablev1.Branch]{
	name: githubevent.KindBranch,
	client: func(r *Recorder) objectClient[*stablev1.Branch] {
		return r.opts.Gitpulse.StableV1().Branches(r.opts.Namespace)
	},
	identity: func(o *stablev1.Branch) identity {
		return identity{o.Spec.Repository, o.Spec.RepositoryID, o.Spec.Name}
	},
	keyField: "spec.name",
	list: func(ctx context.Context, r *Recorder, opts metav1.ListOptions) ([]*stablev1.Branch, error) {
		l, err := r.opts.Gitpulse.StableV1().Branches(r.opts.Namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		return pointers(l.Items), nil
	},
	rename: func(o *stablev1.Branch, repository string, id int64) {
		o.Spec.Repository = repository
		if id > 0 {
			o.Spec.RepositoryID = id
		}
	},
	spec: func(o *stablev1.Branch) any { return o.Spec },
	status: func(o *stablev1.Branch) recordedStatus {
		s := &o.Status
		return recordedStatus{s, &s.Bookkeeping}
	},
}

// branchNames are where ch's Branch is.
func branchNames(ch githubevent.Change) objectNames {
	return objectNames{
		name:     naming.BranchName(ch.Repository, ch.RepositoryID, ch.Branch.Name),
		identity: identity{ch.Repository, ch.RepositoryID, ch.Branch.Name},
	}
}

// deliverBranch records a create, delete or push delivery.
func (r *Recorder) deliverBranch(ctx context.Context, ch githubevent.Change, digest string) (upsertResult, error) {
	_, res, err := upsert(ctx, r, branches, write[*stablev1.Branch]{
		names:    branchNames(ch),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		digest:   digest,
		apply:    func(o *stablev1.Branch) bool { return applyBranch(o, ch) },
		// A push counts in pushCount whatever else it moves.
		sameState: func(a, b *stablev1.Branch) bool {
			x, y := a.Spec, b.Spec
			x.PushCount, y.PushCount = 0, 0
			return equality.Semantic.DeepEqual(x, y)
		},
		// A branch created again after a deletion has an object: that
		// costs one AlreadyExists, and a read.
		isNew: ch.Branch.Action == stablev1.ActionCreated || (ch.Branch.Action == stablev1.ActionPushed && ch.Branch.Created),
	})
	return res, err
}

// applyBranch moves b to what ch says, ordering two things separately:
//
//   - the branch's existence (state, created/deleted times) by
//     spec.updatedAt, the time of the newest create, delete or push applied;
//   - its push facts (head, last push time, forced) by spec.lastPushAt.
//
// They are separate because create and delete payloads carry no time of
// their own (they are ordered by the CloudEvent time, the adapter's clock)
// while pushes carry GitHub's: a push that lands a second "before" the
// create delivery by the other clock still sets the head. A push counts in
// pushCount even when it is older than both (it happened; the delivery-id
// bookkeeping keeps the count exact). It reports whether anything but the
// count moved.
func applyBranch(b *stablev1.Branch, ch githubevent.Change) bool {
	c := ch.Branch
	s := &b.Spec
	s.Name, s.Repository = c.Name, ch.Repository
	at := timeOrNil(ch.OccurredAt)
	moved := false
	if c.Action == stablev1.ActionPushed {
		s.PushCount++
		if newer(ch.OccurredAt, s.LastPushAt) {
			s.HeadSHA, s.LastPushAt, s.LastPushForced = c.HeadSHA, at, c.Forced
			moved = true
		}
	}
	if newer(ch.OccurredAt, s.UpdatedAt) {
		wasDeleted := s.State == string(stablev1.BranchDeleted)
		switch c.Action {
		case stablev1.ActionCreated:
			s.State = string(stablev1.BranchCreated)
			s.CreatedAt, s.DeletedAt = at, nil
		case stablev1.ActionPushed:
			s.State = string(stablev1.BranchCreated)
			if c.Created && (s.CreatedAt == nil || wasDeleted) {
				s.CreatedAt = at
			}
			s.DeletedAt = nil
		case stablev1.ActionDeleted:
			s.State = string(stablev1.BranchDeleted)
			s.DeletedAt = at
		}
		s.UpdatedAt = at
		moved = true
	}
	if s.State == "" { // never leave the required field empty
		s.State = string(stablev1.BranchCreated)
	}
	if moved {
		markApplied(branches.status(b), ch)
	}
	return moved
}

// applyReconciledBranch creates what a branch from the API says, on a new
// object only: the list has no time to order it against deliveries by.
func applyReconciledBranch(b *stablev1.Branch, ch githubevent.Change, now metav1.Time) bool {
	s := &b.Spec
	s.Name, s.Repository = ch.Branch.Name, ch.Repository
	if s.State != "" {
		return false
	}
	s.State = string(stablev1.BranchCreated)
	s.HeadSHA = ch.Branch.HeadSHA
	markApplied(branches.status(b), ch)
	markReconciled(&b.Status.Bookkeeping, now)
	return true
}

// reconcileBranch writes a branch read from the API (it only creates a
// missing object: the list carries no time to order it by), or marks
// deleted a branch GitHub no longer lists (FromAPIBranchAbsent) with the
// delete delivery's rules, at the time the list was read. Counts are not
// the API's to move: a listed branch never pushes.
func (r *Recorder) reconcileBranch(ctx context.Context, ch githubevent.Change, now metav1.Time) (upsertResult, error) {
	w := write[*stablev1.Branch]{
		names:    branchNames(ch),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		apply:    func(o *stablev1.Branch) bool { return applyReconciledBranch(o, ch, now) },
	}
	if ch.Branch.Action == stablev1.ActionDeleted {
		w.apply = func(o *stablev1.Branch) bool {
			moved := applyBranch(o, ch)
			if moved {
				markReconciled(&o.Status.Bookkeeping, now)
			}
			return moved
		}
		// Only an object that exists is marked: absence never creates one.
		live := func(name string) (*stablev1.Branch, error) {
			return branches.client(r).Get(ctx, name, metav1.GetOptions{})
		}
		find := func() (*stablev1.Branch, error) { return branches.find(ctx, r, w.names.identity) }
		switch _, cur, err := locate(w.names, live, find); {
		case err != nil:
			return upsertResult{}, err
		case cur == nil:
			return upsertResult{}, nil
		}
	}
	return reconcileWrite(ctx, r, branches, w)
}

// RecordedBranches lists the names of repository's Branch objects in state
// created, for a reconcile pass to compare with GitHub's branch list.
func (r *Recorder) RecordedBranches(ctx context.Context, repository string, repositoryID int64) ([]string, error) {
	var out []string
	opts := metav1.ListOptions{FieldSelector: repositorySelector(repository).String(), Limit: 500}
	ours := func(b *stablev1.Branch) bool { return b.Spec.Repository == repository }
	if repositoryID > 0 {
		// Also the objects still under a former name (they follow the
		// rename when the pass writes them).
		opts.FieldSelector = repositoryIDSelector(repositoryID).String()
		ours = func(b *stablev1.Branch) bool { return b.Spec.RepositoryID == repositoryID }
	}
	for {
		list, err := r.opts.Gitpulse.StableV1().Branches(r.opts.Namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, b := range list.Items {
			if ours(&b) && b.Spec.State == string(stablev1.BranchCreated) {
				out = append(out, b.Spec.Name)
			}
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}
