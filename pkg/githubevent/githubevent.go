// Package githubevent turns a GitHub webhook delivery, as the Knative
// GitHubSource shapes it into a CloudEvent, into a Change: a plain value that
// says which object (PullRequest, Branch or GitHubDeployment) the delivery is
// about and what it tells us. It does no I/O, so every translation is unit- and fuzz-tested.
package githubevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-github/v60/github"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// TypePrefix starts the CloudEvent type of every GitHubSource event; the
// rest is the X-GitHub-Event header value.
const TypePrefix = "dev.knative.source.github."

// The CloudEvent types the recorder subscribes to.
const (
	TypePullRequest = TypePrefix + "pull_request"
	TypePush        = TypePrefix + "push"
	TypeCreate      = TypePrefix + "create"
	TypeDelete      = TypePrefix + "delete"
	TypePing        = TypePrefix + "ping"
)

// Why a delivery can never be recorded. Every error Parse returns wraps one of
// these; each says Invalid (pkg/function answers it 400, so the Broker does
// not retry).
var (
	ErrUnknownType  error = &invalidError{"not a GitHub event type"}
	ErrMalformed    error = &invalidError{"malformed payload"}
	ErrMismatch     error = &invalidError{"payload does not match its event type"}
	ErrNoRepository error = &invalidError{"payload names no repository"}
	ErrNoDeliveryID error = &invalidError{"event has no id (X-GitHub-Delivery)"}
)

// invalidError is a delivery at fault itself.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

// Invalid says that redelivering the event can never succeed.
func (e *invalidError) Invalid() bool { return true }

// IsInvalid reports whether err says the delivery itself is at fault, so that
// redelivering it can never succeed.
func IsInvalid(err error) bool {
	var inv *invalidError
	return errors.As(err, &inv)
}

// TimeSource names where a Change's OccurredAt came from, for logs and docs.
type TimeSource string

const (
	TimeFromUpdatedAt  TimeSource = "pull_request.updated_at"
	TimeFromPushedAt   TimeSource = "repository.pushed_at"
	TimeFromHeadCommit TimeSource = "head_commit.timestamp"
	TimeFromCloudEvent TimeSource = "cloudevent.time"
	TimeFromArrival    TimeSource = "arrival"
)

// Change is what one delivery (or one read of the GitHub API) tells us. One
// of PullRequest, Branch, Review and Deployment is set (a pull request read
// from the API may carry its Review beside it), unless Ignored says why the
// delivery changes nothing; Subject says which one the change is about.
type Change struct {
	// DeliveryID is the X-GitHub-Delivery GUID (the CloudEvent id).
	DeliveryID string
	// Event is the X-GitHub-Event name: pull_request, push, create, ...
	Event string
	// Repository is GitHub's owner/name.
	Repository string
	// RepositoryID is GitHub's repository.id (0 when the payload has
	// none: hand-made deliveries). It, not the name, is the repository's
	// identity: renames and transfers keep it.
	RepositoryID int64
	// Sender is the login of whoever caused the delivery.
	Sender string
	// RepositoryNamedAt, when not zero, is when the repository was known to
	// have the name Repository: a reconcile pass sets the time it read the
	// name from the API. Zero means OccurredAt (NamedAt).
	RepositoryNamedAt time.Time
	// OccurredAt orders deliveries about one object: a delivery older than
	// what an object already reflects must not move it backwards. It is
	// truncated to whole seconds because that is what metav1.Time stores and
	// what GitHub's own timestamps carry; ties keep arrival order.
	OccurredAt time.Time
	// TimeSource says where OccurredAt came from.
	TimeSource TimeSource

	// Ignored, when not empty, says why the delivery is acknowledged without
	// any effect (a tag, a ping, an event type we do not record).
	Ignored string

	PullRequest *PullRequestChange
	Branch      *BranchChange
	// Review is set for a pull_request_review delivery (recorded on the
	// PullRequest), Deployment for deployment and deployment_status.
	Review     *ReviewChange
	Deployment *DeploymentChange
}

// NamedAt is when the change's repository had the name Repository, as far
// as the change tells: a change older than the name an object already has
// never names it back (a redelivery from before a rename).
func (ch Change) NamedAt() time.Time {
	if !ch.RepositoryNamedAt.IsZero() {
		return ch.RepositoryNamedAt
	}
	return ch.OccurredAt
}

// PullRequestChange is the pull request as the payload describes it.
type PullRequestChange struct {
	// Action is GitHub's pull_request action (opened, closed, synchronize, ...).
	Action string
	Number int64
	// GitHubID is pull_request.id (0 when absent).
	GitHubID   int64
	Title      string
	User       string
	HeadBranch string
	BaseBranch string
	HeadSHA    string
	URL        string
	// State is open, closed or merged (merged told apart from closed).
	State  stablev1.PullRequestState
	Merged bool
	// Draft is nil when the delivery does not say: the GitHubSource
	// adapter's v5 struct has no draft field, so only converted_to_draft
	// and ready_for_review tell it in a cluster (see draftOf).
	Draft    *bool
	OpenedAt time.Time
	ClosedAt time.Time
	MergedAt time.Time
	// MergeCommitSHA is merge_commit_sha (both shapes carry it).
	MergeCommitSHA string
}

// BranchChange is what a create, delete or push delivery says about a branch.
type BranchChange struct {
	// Action is stablev1.ActionCreated, ActionPushed or ActionDeleted.
	Action string
	// Name is the raw branch name (may contain slashes).
	Name string
	// HeadSHA is the branch tip after a push.
	HeadSHA string
	// Forced is true for a force push.
	Forced bool
	// Created is true for a push that created the branch.
	Created bool
	// Commits is the number of commits a push carried.
	Commits int
}

// Parse translates a GitHubSource CloudEvent into a Change. received is the
// arrival time, the last resort for ordering deliveries that carry no time
// of their own. Errors wrap the Err* values above.
func Parse(e event.Event, received time.Time) (Change, error) {
	if !strings.HasPrefix(e.Type(), TypePrefix) || len(e.Type()) == len(TypePrefix) {
		return Change{}, fmt.Errorf("%w: %q", ErrUnknownType, e.Type())
	}
	if e.ID() == "" {
		return Change{}, ErrNoDeliveryID
	}
	if ct := e.DataContentType(); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return Change{}, fmt.Errorf("%w: datacontenttype %q is not JSON", ErrMalformed, ct)
	}
	name := strings.TrimPrefix(e.Type(), TypePrefix)
	ch := Change{DeliveryID: e.ID(), Event: name}
	ceTime, ceSource := received, TimeFromArrival
	if !e.Time().IsZero() {
		ceTime, ceSource = e.Time(), TimeFromCloudEvent
	}
	ch.OccurredAt, ch.TimeSource = ceTime, ceSource

	// JSON is UTF-8 and GitHub sends nothing else; encoding/json would
	// quietly turn invalid bytes into U+FFFD and record a name GitHub never
	// had.
	if !utf8.Valid(e.Data()) {
		return Change{}, fmt.Errorf("%w: payload is not valid UTF-8", ErrMalformed)
	}
	if !recorded[name] {
		// Another GitHub event type: nothing we record, so acknowledge it
		// without reading more than that it is JSON. (The GitHubSource
		// adapter's shape of such types is not go-github's either; see
		// parseTolerant.)
		if !json.Valid(e.Data()) {
			return Change{}, fmt.Errorf("%w: %s: payload is not JSON", ErrMalformed, name)
		}
		ch.Ignored = "event type " + name + " is not recorded"
		ch.OccurredAt = ch.OccurredAt.UTC().Truncate(time.Second)
		return ch, nil
	}
	payload, err := parseTolerant(name, e.Data())
	if err != nil {
		return Change{}, fmt.Errorf("%w: %s: %w", ErrMalformed, name, err)
	}

	switch p := payload.(type) {
	case *github.PullRequestEvent:
		err = ch.fromPullRequest(p)
	case *github.PushEvent:
		err = ch.fromPush(p)
	case *github.CreateEvent:
		err = ch.fromRef(stablev1.ActionCreated, p.GetRef(), p.GetRefType(), p.GetRepo(), p.GetSender().GetLogin())
	case *github.DeleteEvent:
		err = ch.fromRef(stablev1.ActionDeleted, p.GetRef(), p.GetRefType(), p.GetRepo(), p.GetSender().GetLogin())
	case *github.PullRequestReviewEvent:
		err = ch.fromReview(p)
	case *github.DeploymentEvent:
		err = ch.fromDeployment(p.GetDeployment(), p.GetRepo(), p.GetSender().GetLogin(), nil, false)
	case *github.DeploymentStatusEvent:
		err = ch.fromDeployment(p.GetDeployment(), p.GetRepo(), p.GetSender().GetLogin(), p.GetDeploymentStatus(), true)
	case *github.PingEvent:
		ch.Repository = p.GetRepo().GetFullName()
		ch.Sender = p.GetSender().GetLogin()
		ch.Ignored = "ping"
	default:
		ch.Ignored = "event type " + name + " is not recorded"
	}
	if err != nil {
		return Change{}, err
	}
	ch.RepositoryID = max(ch.RepositoryID, 0) // GitHub's ids are positive; anything else says nothing
	ch.OccurredAt = ch.OccurredAt.UTC().Truncate(time.Second)
	return ch, nil
}

func (ch *Change) fromPullRequest(p *github.PullRequestEvent) error {
	pr := p.GetPullRequest()
	if pr == nil || p.GetAction() == "" {
		return fmt.Errorf("%w: pull_request without pull_request object or action", ErrMismatch)
	}
	ch.Repository, ch.RepositoryID = p.GetRepo().GetFullName(), p.GetRepo().GetID()
	if err := checkRepository(ch.Repository); err != nil {
		return err
	}
	number := int64(pr.GetNumber())
	if number == 0 {
		number = int64(p.GetNumber())
	}
	if number <= 0 {
		return fmt.Errorf("%w: pull_request without a positive number", ErrMismatch)
	}
	if !present(pr.GetUpdatedAt()) {
		return fmt.Errorf("%w: pull_request without updated_at", ErrMismatch)
	}
	ch.Sender = p.GetSender().GetLogin()
	ch.OccurredAt, ch.TimeSource = pr.GetUpdatedAt().Time, TimeFromUpdatedAt

	c := pullRequestFields(pr)
	c.Action, c.Number = p.GetAction(), number
	c.Draft = draftOf(p.GetAction(), pr.Draft)
	c.MergeCommitSHA = pr.GetMergeCommitSHA()
	var known bool
	if c.State, known = pullRequestState(pr); !known {
		return fmt.Errorf("%w: pull_request state %q", ErrMismatch, pr.GetState())
	}
	ch.PullRequest = &c
	return nil
}

// pullRequestFields is what every source of a pull request (a
// pull_request delivery, the pull request a review delivery embeds, the
// REST API's list) tells the same way.
func pullRequestFields(pr *github.PullRequest) PullRequestChange {
	return PullRequestChange{
		Number:     int64(pr.GetNumber()),
		GitHubID:   max(pr.GetID(), 0),
		Title:      pr.GetTitle(),
		User:       pr.GetUser().GetLogin(),
		HeadBranch: pr.GetHead().GetRef(),
		BaseBranch: pr.GetBase().GetRef(),
		HeadSHA:    pr.GetHead().GetSHA(),
		URL:        pr.GetHTMLURL(),
		// merged_at says it where a shape has no "merged" member (the
		// REST list, the adapter's struct for a review's pull request).
		Merged:   pr.GetMerged() || present(pr.GetMergedAt()),
		OpenedAt: orZero(pr.GetCreatedAt()),
		ClosedAt: orZero(pr.GetClosedAt()),
		MergedAt: orZero(pr.GetMergedAt()),
	}
}

// pullRequestState is pr's state (a merge is final); false when GitHub's
// state is neither open nor closed.
func pullRequestState(pr *github.PullRequest) (stablev1.PullRequestState, bool) {
	switch {
	case pr.GetMerged() || present(pr.GetMergedAt()):
		return stablev1.PullRequestMerged, true
	case pr.GetState() == "closed":
		return stablev1.PullRequestClosed, true
	case pr.GetState() == "open":
		return stablev1.PullRequestOpen, true
	}
	return "", false
}

// draftOf is the draft state a pull_request delivery tells: the payload's
// draft field when present (GitHub's own shape), else what the action
// implies, else nil (unknown: keep what the object says).
func draftOf(action string, draft *bool) *bool {
	switch {
	case draft != nil:
		return draft
	case action == stablev1.ActionConvertedToDraft:
		return github.Bool(true)
	case action == stablev1.ActionReadyForReview:
		return github.Bool(false)
	}
	return nil
}

func (ch *Change) fromPush(p *github.PushEvent) error {
	ref := p.GetRef()
	if ref == "" {
		return fmt.Errorf("%w: push without ref", ErrMismatch)
	}
	ch.Repository, ch.RepositoryID = p.GetRepo().GetFullName(), p.GetRepo().GetID()
	if err := checkRepository(ch.Repository); err != nil {
		return err
	}
	ch.Sender = p.GetSender().GetLogin()
	if ch.Sender == "" {
		ch.Sender = p.GetPusher().GetName()
	}
	// repository.pushed_at is the time of the push itself; head_commit's
	// timestamp is when the commit was authored, which may be long before
	// (a force push back to an old commit), so it is only a fallback.
	switch {
	case present(p.GetRepo().GetPushedAt()):
		ch.OccurredAt, ch.TimeSource = p.GetRepo().GetPushedAt().Time, TimeFromPushedAt
	case present(p.GetHeadCommit().GetTimestamp()):
		ch.OccurredAt, ch.TimeSource = p.GetHeadCommit().GetTimestamp().Time, TimeFromHeadCommit
	}
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok || branch == "" {
		ch.Ignored = "push to " + ref + " is not a branch"
		return nil
	}
	c := &BranchChange{
		Action:  stablev1.ActionPushed,
		Name:    branch,
		HeadSHA: p.GetAfter(),
		Forced:  p.GetForced(),
		Created: p.GetCreated(),
		Commits: len(p.Commits),
	}
	if p.GetDeleted() {
		// The branch tip after a deletion is 0000...; keep the last real one.
		c.Action, c.HeadSHA, c.Commits = stablev1.ActionDeleted, "", 0
	}
	ch.Branch = c
	return nil
}

// fromRef handles create and delete. Their payloads have no field of their
// own for when it happened, but creating or deleting a ref is a push to the
// repository, so repository.pushed_at is its time on GitHub's clock — the
// clock pushes are ordered by, too (the octokit examples show a tag's create
// and delete one second apart in pushed_at). Without it they keep the
// CloudEvent time (the adapter's receipt) or, without one, the arrival time.
func (ch *Change) fromRef(action, ref, refType string, repo *github.Repository, sender string) error {
	if ref == "" || refType == "" {
		return fmt.Errorf("%w: %s without ref or ref_type", ErrMismatch, ch.Event)
	}
	ch.Repository, ch.RepositoryID = repo.GetFullName(), repo.GetID()
	if present(repo.GetPushedAt()) {
		ch.OccurredAt, ch.TimeSource = repo.GetPushedAt().Time, TimeFromPushedAt
	}
	if err := checkRepository(ch.Repository); err != nil {
		return err
	}
	ch.Sender = sender
	if refType != "branch" {
		ch.Ignored = ch.Event + " of a " + refType + " is not recorded"
		return nil
	}
	name := strings.TrimPrefix(ref, "refs/heads/")
	if name == "" {
		return fmt.Errorf("%w: %s of a branch without a name", ErrMismatch, ch.Event)
	}
	ch.Branch = &BranchChange{Action: action, Name: name}
	return nil
}

func checkRepository(fullName string) error {
	if fullName == "" {
		return ErrNoRepository
	}
	if err := stablev1.ValidateRepository(fullName); err != nil {
		return fmt.Errorf("%w: %w", ErrNoRepository, err)
	}
	return nil
}

// pullRequestRules: a pull_request delivery, or a pull request read from
// the API (with its review list when the pass read it).
type pullRequestRules struct{}

func (pullRequestRules) kind() string { return KindPullRequest }

// action is GitHub's pull_request action, but "merged" for a merged pull
// request's closed.
func (pullRequestRules) action(ch Change) string {
	if ch.PullRequest.Action == stablev1.ActionClosed && ch.PullRequest.Merged {
		return stablev1.ActionMerged
	}
	return ch.PullRequest.Action
}

var pullRequestReasons = map[string]string{
	stablev1.ActionOpened:           stablev1.ReasonPullRequestOpened,
	stablev1.ActionReopened:         stablev1.ReasonPullRequestReopened,
	stablev1.ActionClosed:           stablev1.ReasonPullRequestClosed,
	stablev1.ActionMerged:           stablev1.ReasonPullRequestMerged,
	stablev1.ActionSynchronize:      stablev1.ReasonPullRequestSynchronized,
	stablev1.ActionEdited:           stablev1.ReasonPullRequestEdited,
	stablev1.ActionReadyForReview:   stablev1.ReasonPullRequestReadyForReview,
	stablev1.ActionConvertedToDraft: stablev1.ReasonPullRequestConvertedToDraft,
}

func (p pullRequestRules) reason(ch Change) string {
	if r, ok := pullRequestReasons[p.action(ch)]; ok {
		return r
	}
	return stablev1.ReasonPullRequestUpdated
}

func (p pullRequestRules) message(ch Change, who string) string {
	pr := ch.PullRequest
	action := p.action(ch)
	verb := strings.ReplaceAll(action, "_", " ")
	switch action {
	case stablev1.ActionSynchronize:
		verb = "pushed to"
	case stablev1.ActionReadyForReview:
		verb = "marked ready for review"
	case stablev1.ActionConvertedToDraft:
		verb = "converted to draft"
	}
	return fmt.Sprintf("%s %s pull request #%d %q (%s -> %s) in %s",
		who, verb, pr.Number, pr.Title, pr.HeadBranch, pr.BaseBranch, ch.Repository)
}

// branchRules: a create, delete or push delivery, or a branch read from
// the API.
type branchRules struct{}

func (branchRules) kind() string { return KindBranch }

// action is created, pushed or deleted (reconciled from the API).
func (branchRules) action(ch Change) string { return ch.Branch.Action }

var branchReasons = map[string]string{
	stablev1.ActionCreated: stablev1.ReasonBranchCreated,
	stablev1.ActionPushed:  stablev1.ReasonBranchPushed,
	stablev1.ActionDeleted: stablev1.ReasonBranchDeleted,
}

func (branchRules) reason(ch Change) string { return branchReasons[ch.Branch.Action] }

func (branchRules) message(ch Change, who string) string {
	b := ch.Branch
	if b.Action != stablev1.ActionPushed {
		return fmt.Sprintf("%s %s branch %s in %s", who, b.Action, b.Name, ch.Repository)
	}
	forced := ""
	if b.Forced {
		forced = "force-"
	}
	return fmt.Sprintf("%s %spushed %s to branch %s in %s (head %s)",
		who, forced, plural(b.Commits, "commit"), b.Name, ch.Repository, short(b.HeadSHA))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// present reports whether a payload time is there. Absent times arrive as
// JSON null or a missing member (GitHub), as "0001-01-01T00:00:00Z" (an
// absent time.Time in the adapter's v5 structs) or as 0 (an absent integer
// time, e.g. a push's repository.pushed_at in the adapter's shape): all mean
// "absent", never 1970 or year 1.
func present(t github.Timestamp) bool { return !t.IsZero() && t.Unix() != 0 }

func orZero(t github.Timestamp) time.Time {
	if !present(t) {
		return time.Time{}
	}
	return t.Time
}

// recorded are the GitHub event types Parse reads (RecordedEvents and
// ping); every other type is acknowledged and ignored.
var recorded = func() map[string]bool {
	m := map[string]bool{EventPing: true}
	for _, t := range RecordedEvents {
		m[t] = true
	}
	return m
}()

// parseTolerant parses a payload with go-github in either shape the recorder
// receives: GitHub's own (a raw webhook body) or the GitHubSource adapter's,
// which is json.Marshal of gopkg.in/go-playground/webhooks.v5's structs
// (eventing-github pkg/common/handler.go). That shape turns a null object
// into a zero-valued one, so a branch-deleting push arrives with
// "head_commit": {"timestamp": "", ...}, which go-github's Timestamp refuses.
// An empty string where a time belongs means "absent", so on a first failure
// those are removed and the payload parsed once more; a payload that still
// fails is malformed. (Absent time.Time fields arrive as
// "0001-01-01T00:00:00Z", which parses to the zero time: also "absent".)
func parseTolerant(name string, data []byte) (any, error) {
	parse := github.ParseWebHook
	switch name {
	case "pull_request":
		parse = func(_ string, data []byte) (any, error) { return parsePullRequestEvent(data) }
	case "pull_request_review":
		parse = func(_ string, data []byte) (any, error) { return parsePullRequestReviewEvent(data) }
	}
	payload, err := parse(name, data)
	if err == nil {
		return payload, nil
	}
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return nil, err
	}
	if !dropEmptyTimes(doc) {
		return nil, err
	}
	cleaned, mErr := json.Marshal(doc)
	if mErr != nil {
		return nil, err
	}
	payload, err2 := parse(name, cleaned)
	if err2 != nil {
		return nil, err
	}
	return payload, nil
}

// dropEmptyTimes removes, everywhere in a decoded JSON document, members
// whose value is "" and whose name says they hold a time ("timestamp",
// "*_at"). It reports whether it removed any.
func dropEmptyTimes(v any) bool {
	dropped := false
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if s, ok := child.(string); ok && s == "" && (k == "timestamp" || strings.HasSuffix(k, "_at")) {
				delete(v, k)
				dropped = true
				continue
			}
			if dropEmptyTimes(child) {
				dropped = true
			}
		}
	case []any:
		for _, child := range v {
			if dropEmptyTimes(child) {
				dropped = true
			}
		}
	}
	return dropped
}
