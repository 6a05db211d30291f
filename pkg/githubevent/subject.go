package githubevent

import stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"

// Object kinds a Change lands on.
const (
	KindPullRequest      = stablev1.KindPullRequest
	KindBranch           = stablev1.KindBranch
	KindGitHubDeployment = stablev1.KindGitHubDeployment
)

// Subject is what a Change is about: the one of its parts (PullRequest,
// Branch, Review, Deployment) that decides the kind of object it lands on
// and its Event's action, reason and message. Change.Subject is the only
// place that looks at which parts are set; everything else asks it.
type Subject string

const (
	// SubjectNone: an ignored change, or one with no part set.
	SubjectNone Subject = ""
	// SubjectPullRequest: a pull_request delivery, or a pull request read
	// from the API. A pull request read with its reviews
	// (FromAPIPullRequestWithReviews) carries a Review beside it and is
	// still about the pull request.
	SubjectPullRequest Subject = "pull_request"
	// SubjectBranch: a create, delete or push delivery, or a branch read
	// from the API.
	SubjectBranch Subject = "branch"
	// SubjectReview: a pull_request_review delivery, or a pull request's
	// review list read alone (FromAPIReviews); it lands on the PullRequest.
	SubjectReview Subject = "review"
	// SubjectDeployment: a deployment or deployment_status delivery, or a
	// deployment read from the API with its statuses.
	SubjectDeployment Subject = "deployment"
)

// subjectRules is what differs between subjects: the kind of object and
// the Event's action, reason and message (who is the sender, or
// "someone").
type subjectRules interface {
	kind() string
	action(ch Change) string
	reason(ch Change) string
	message(ch Change, who string) string
}

var subjects = map[Subject]subjectRules{
	SubjectPullRequest: pullRequestRules{},
	SubjectBranch:      branchRules{},
	SubjectReview:      reviewRules{},
	SubjectDeployment:  deploymentRules{},
}

// part chooses the subject by the parts set, whether or not the change is
// ignored. A pull request comes before the review that may ride beside it.
func (ch Change) part() Subject {
	switch {
	case ch.PullRequest != nil:
		return SubjectPullRequest
	case ch.Branch != nil:
		return SubjectBranch
	case ch.Review != nil:
		return SubjectReview
	case ch.Deployment != nil:
		return SubjectDeployment
	}
	return SubjectNone
}

// Subject is what the Change is about, or SubjectNone when it is ignored.
func (ch Change) Subject() Subject {
	if ch.Ignored != "" {
		return SubjectNone
	}
	return ch.part()
}

// rules are the change's subject's rules; nil when no part is set.
func (ch Change) rules() subjectRules { return subjects[ch.part()] }

// Kind is the kind of object the Change is about, or "" when it is ignored.
func (ch Change) Kind() string {
	if s := ch.Subject(); s != SubjectNone {
		return subjects[s].kind()
	}
	return ""
}

// Action is the Event's action, by the subject's rules: GitHub's
// pull_request action (but "merged" for a merged pull request's closed),
// the branch's created / pushed / deleted, review_submitted / _edited /
// _dismissed, a deployment's created or its status's state.
func (ch Change) Action() string {
	if k := ch.rules(); k != nil {
		return k.action(ch)
	}
	return ""
}

// Reason is the Event reason for the Change.
func (ch Change) Reason() string {
	if k := ch.rules(); k != nil {
		return k.reason(ch)
	}
	return ""
}

// Message is the Event message: who did what to which pull request, branch
// or deployment in which repository.
func (ch Change) Message() string {
	k := ch.rules()
	if k == nil {
		return ""
	}
	who := ch.Sender
	if who == "" {
		who = "someone"
	}
	return k.message(ch, who)
}
