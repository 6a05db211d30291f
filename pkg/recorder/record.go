package recorder

// The two ways a change reaches the recorder, a delivery (record) and a
// reconcile pass's read of the GitHub API (RecordReconciled): the object
// write by the rules of the change's subject (subjects, below; each kind's
// file has its rules for both), then the one Event (event.go).

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// subjectRules is how the recorder writes one subject of change into its
// object: delivered (digest is the payload's, for the replay check), or
// read by a reconcile pass (now is the pass's time, for
// status.reconciledAt). Each lives in the file of its kind.
type subjectRules struct {
	deliver   func(r *Recorder, ctx context.Context, ch githubevent.Change, digest string) (upsertResult, error)
	reconcile func(r *Recorder, ctx context.Context, ch githubevent.Change, now metav1.Time) (upsertResult, error)
}

var subjects = map[githubevent.Subject]subjectRules{
	githubevent.SubjectPullRequest: {(*Recorder).deliverPullRequest, (*Recorder).reconcilePullRequest},
	githubevent.SubjectBranch:      {(*Recorder).deliverBranch, (*Recorder).reconcileBranch},
	githubevent.SubjectReview:      {(*Recorder).deliverReview, (*Recorder).reconcileReviews},
	githubevent.SubjectDeployment:  {(*Recorder).deliverDeployment, (*Recorder).reconcileDeployment},
}

// Record applies ch and records its Event, in two API requests when
// nothing competes: one write of the object (the change, its status and the
// delivery id together) and the Event create. The steps are ordered so that
// a retry of the same delivery after any failure finishes the job without
// doing any part twice:
//
//  1. The object is the one this replica wrote last when it remembers it
//     (objects.go), else it is read from the API server. If its
//     remembered deliveries hold this one, the change is in place: go to
//     3 (or stop, see there).
//  2. The object is created, or updated under the resourceVersion it was
//     read at, with the change, the delivery id and the status derived
//     from them in one write. A conflict or AlreadyExists means the read
//     was behind (a stale cache, a concurrent writer): the object is read
//     again from the API server and the decision taken again, so nothing
//     is ever decided on a stale object.
//  3. The Event is created; AlreadyExists means a concurrent copy or an
//     earlier attempt wrote it: Duplicate. A delivery applied longer ago
//     than the Events' TTL is Duplicate without trying: its Event was
//     written and has expired (or, if every attempt failed for that long,
//     is given up rather than risk counting it twice).
//
// Receive is the way in for a CloudEvent; Record takes a Change as it is
// (with no payload, so no replay check), which lets a test apply a change
// at a time no real delivery could carry.
func (r *Recorder) Record(ctx context.Context, ch githubevent.Change) (Outcome, error) {
	return r.record(ctx, ch, "")
}

// eventTTLMargin is how much sooner than the Events' TTL the recorder
// stops retrying an Event create for an applied delivery: room for the
// clocks of two replicas (one wrote the applied time, the other compares
// it with its own) to differ. At most half of a (test-sized) TTL.
const eventTTLMargin = 5 * time.Minute

// record is Record with the payload's digest (PayloadDigest; "" skips the
// replay check): a payload identical to one of the object's recent ones
// under another delivery id is acknowledged as Replayed, and nothing is
// written — no state change, no pushCount, no Event to count.
func (r *Recorder) record(ctx context.Context, ch githubevent.Change, digest string) (Outcome, error) {
	rules, ok := subjects[ch.Subject()]
	if !ok {
		return Ignored, nil
	}
	res, err := rules.deliver(r, ctx, ch, digest)
	if err != nil {
		return "", err
	}
	if res.replayed {
		return Replayed, nil
	}
	if res.already && !res.appliedAt.IsZero() && r.opts.Now().Sub(res.appliedAt) >= r.opts.EventTTL-min(eventTTLMargin, r.opts.EventTTL/2) {
		return Duplicate, nil
	}
	created, err := r.createEvent(ctx, r.deliveryEvent(ch, res.object))
	if err == nil {
		r.recordRename(ctx, ch, res)
	}
	switch {
	case err != nil:
		return "", err
	case !created:
		return Duplicate, nil
	case res.already:
		return Completed, nil
	case !res.applied:
		return Stale, nil
	}
	return Recorded, nil
}

// Reconciled: a reconcile pass changed the object (backfill or drift
// repair) and wrote its one Reconciled Event.
const Reconciled Outcome = "reconciled"

// RecordReconciled records a Change built from the GitHub REST API
// (githubevent.FromAPIPullRequest, FromAPIBranch, FromAPIReviews,
// FromAPIDeployment) by a reconcile pass. It goes through the same upsert as a delivery, so the same ordering rules
// hold: a pull request never moves backwards (updated_at, merged is final)
// and a delivery that arrives later still wins when newer. A branch from the
// API carries no time, so it only creates a missing object (with its head),
// never moves an existing one.
//
// Nothing is written when the object already says what the API says (a pass
// that finds no drift writes nothing): the outcome is Duplicate. When it
// writes, the object gets status.reconciledAt and one Event with reason
// Reconciled and reportingController ReconcilerController, which the
// metrics function's delivery counters do not select. The Change's
// synthetic DeliveryID depends only on the API's state, so overlapping
// passes write once: the second finds the id in status.recentDeliveries, or its
// Event already exists.
func (r *Recorder) RecordReconciled(ctx context.Context, ch githubevent.Change) (Outcome, error) {
	if !strings.HasPrefix(ch.DeliveryID, githubevent.ReconciledIDPrefix) {
		return "", fmt.Errorf("recorder: %q is not a reconciled change", ch.DeliveryID)
	}
	rules, ok := subjects[ch.Subject()]
	if !ok || !r.ownerAllowed(ch.Repository) {
		return Ignored, nil
	}
	now := metav1.NewTime(r.opts.Now().UTC().Truncate(time.Second))
	res, err := rules.reconcile(r, ctx, ch, now)
	if err != nil {
		return "", err
	}
	// A rename is written even when nothing else drifted.
	r.recordRename(ctx, ch, res)
	if res.already || !res.applied { // no drift (nothing written), or written before
		return Duplicate, nil
	}
	created, err := r.createEvent(ctx, r.reconciledEvent(ch, res.object))
	if err != nil {
		return "", err
	}
	if !created {
		return Duplicate, nil
	}
	return Reconciled, nil
}

// recordRename writes the Renamed Event of an object the write made follow
// its repository's rename or transfer (res.renamedFrom): one per object
// and change, named after both (a retry of the change gets AlreadyExists).
// It is not a delivery (ReconcilerController, reason Renamed), so no
// delivery counter counts it. A failure is logged, not returned: the object
// already follows, and the delivery's own Event is written; the Event
// only says so.
func (r *Recorder) recordRename(ctx context.Context, ch githubevent.Change, res upsertResult) {
	if res.renamedFrom == "" {
		return
	}
	if _, err := r.createEvent(ctx, r.renamedEvent(ch, res.object, res.renamedFrom)); err != nil {
		r.log.Warn("Renamed Event not written", "delivery", ch.DeliveryID, "object", res.object.Name, "err", err)
	}
}
