package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PullRequestState is the GitHub state of a pull request, with merged told
// apart from closed.
// +kubebuilder:validation:Enum=open;closed;merged
type PullRequestState string

const (
	PullRequestOpen   PullRequestState = "open"
	PullRequestClosed PullRequestState = "closed"
	PullRequestMerged PullRequestState = "merged"
)

// BranchState says whether a branch exists in its repository.
// +kubebuilder:validation:Enum=created;deleted
type BranchState string

const (
	BranchCreated BranchState = "created"
	BranchDeleted BranchState = "deleted"
)

// PullRequest and Branch have no status subresource, on purpose: their only
// writer is the recorder, so there is no second party whose writes the
// subresource would keep apart. Without it the status rides in the same
// write as the change (one request per delivery instead of two), and is
// never out of step with the spec.
//
// The status is the recorder's bookkeeping, as small as its rules allow:
// which delivery moved the object last (what it did is on that delivery's
// Event), which deliveries it applied recently (exactly once), when the
// repository got its name (renames), what it counted. It has no conditions
// and no observedGeneration: nothing reconciles these objects towards a
// desired state, every write carries spec and status together, so a Ready
// condition would always be True and say nothing (it cost the API server
// more than the rest of the object's data: docs/benchmarks.md, "A lean
// object"). The order rule is spec.updatedAt. The bookkeeping is not in
// annotations: the API server converts an object's metadata on every
// decode and encode, and tracks each annotation in its managed fields
// (docs/benchmarks.md, "The bookkeeping in the status").
//
// Spec and status are atomic for server-side apply (+structType=atomic,
// the CRD's x-kubernetes-map-type: atomic): the recorder writes each of
// them whole, and nothing else writes a part of one. So the API server's
// managed fields for a create name "f:spec" and "f:status", not every
// field in them. It converts an object's metadata, managed fields
// included, each time it decodes or encodes the object, and an entry per
// field cost a create about as much as the field itself (docs/benchmarks.md,
// "Atomic spec and status").

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pr;prs,categories=gitpulse
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Number",type=integer,JSONPath=`.spec.number`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.spec.status`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.spec.user`
// +kubebuilder:printcolumn:name="Branch",type=string,JSONPath=`.spec.branch`
// +kubebuilder:printcolumn:name="Reviews",type=integer,JSONPath=`.spec.reviewCount`,priority=1
// +kubebuilder:printcolumn:name="Approvals",type=integer,JSONPath=`.spec.approvalCount`,priority=1
// +kubebuilder:printcolumn:name="Title",type=string,JSONPath=`.spec.title`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.repositoryID`
// +kubebuilder:selectablefield:JSONPath=`.spec.repository`
// +kubebuilder:selectablefield:JSONPath=`.spec.number`

// PullRequest is one GitHub pull request, identified by its repository's
// GitHub id and its number (by the repository's name when no id is known).
// The selectable fields let the recorder find the object of a pull request
// whose repository was renamed: its name keeps the prefix it was created
// with.
type PullRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PullRequestSpec `json:"spec"`
	// +optional
	Status PullRequestStatus `json:"status,omitempty"`
}

// PullRequestSpec is what GitHub last told us about a pull request. The first
// four fields keep the names and meaning of the original liatrio example, so
// objects written for it still validate.
// +structType=atomic
type PullRequestSpec struct {
	// User is the login of the pull request's author.
	User string `json:"user"`
	// Branch is the head branch (the branch being merged).
	Branch string `json:"branch"`
	// Status is open, closed, or merged.
	// +kubebuilder:validation:Enum=open;closed;merged
	Status string `json:"status"`
	// ID is the pull request number, as a string (as in the original example).
	ID string `json:"id"`

	// Repository is GitHub's owner/name of the repository.
	// +optional
	// +kubebuilder:validation:MaxLength=140
	Repository string `json:"repository,omitempty"`
	// Number is the pull request number within the repository.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Number int64 `json:"number,omitempty"`
	// RepositoryID is GitHub's repository.id: the repository's identity,
	// which survives renames and transfers (0 when no delivery said it).
	// +optional
	// +kubebuilder:validation:Minimum=0
	RepositoryID int64 `json:"repositoryID,omitempty"`
	// GitHubID is GitHub's pull_request.id (0 when no delivery said it).
	// +optional
	// +kubebuilder:validation:Minimum=0
	GitHubID int64 `json:"githubID,omitempty"`
	// Title is the pull request's title.
	// +optional
	Title string `json:"title,omitempty"`
	// BaseBranch is the branch the pull request merges into.
	// +optional
	BaseBranch string `json:"baseBranch,omitempty"`
	// HeadSHA is the commit at the head branch's tip.
	// +optional
	HeadSHA string `json:"headSHA,omitempty"`
	// URL is the pull request's page on GitHub.
	// +optional
	URL string `json:"url,omitempty"`
	// Merged is true once the pull request was merged.
	// +optional
	Merged bool `json:"merged,omitempty"`
	// Draft is true while the pull request is a draft.
	// +optional
	Draft bool `json:"draft,omitempty"`
	// OpenedAt is when the pull request was opened (GitHub created_at).
	// +optional
	OpenedAt *metav1.Time `json:"openedAt,omitempty"`
	// ClosedAt is when the pull request was closed, merged or not.
	// +optional
	ClosedAt *metav1.Time `json:"closedAt,omitempty"`
	// MergedAt is when the pull request was merged.
	// +optional
	MergedAt *metav1.Time `json:"mergedAt,omitempty"`
	// UpdatedAt is GitHub's updated_at of the newest delivery applied. The
	// recorder never applies a delivery older than this, so late or
	// redelivered events cannot move the object backwards.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`

	// MergeCommitSHA is GitHub's merge_commit_sha from pull_request
	// deliveries (ordered like the fields above). Only meaningful once the
	// pull request is merged: before, GitHub names a test merge commit.
	// +optional
	MergeCommitSHA string `json:"mergeCommitSHA,omitempty"`

	// Reviews, from pull_request_review deliveries. The times are the
	// earliest submitted_at seen (a minimum does not depend on the order
	// deliveries arrive in); the counts have one per distinct delivery.
	//
	// FirstReviewAt is when the first review of any state (commented,
	// approved, changes requested) was submitted.
	// +optional
	FirstReviewAt *metav1.Time `json:"firstReviewAt,omitempty"`
	// FirstApprovalAt is when the first approving review was submitted.
	// +optional
	FirstApprovalAt *metav1.Time `json:"firstApprovalAt,omitempty"`
	// ReviewCount is the number of reviews submitted.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ReviewCount int64 `json:"reviewCount,omitempty"`
	// ApprovalCount is the number of approving reviews submitted (a later
	// dismissal does not take one back; see DismissedCount).
	// +optional
	// +kubebuilder:validation:Minimum=0
	ApprovalCount int64 `json:"approvalCount,omitempty"`
	// DismissedCount is the number of reviews dismissed.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DismissedCount int64 `json:"dismissedCount,omitempty"`
}

// PullRequestStatus is the recorder's bookkeeping about a pull request.
// +structType=atomic
type PullRequestStatus struct {
	Bookkeeping `json:",inline"`
	// CountedReviews are the GitHub ids of the reviews counted in the
	// spec's counts, each with what it was counted as: "<review
	// id>:<flags>", comma separated, sorted by id; flags are s
	// (reviewCount), a (approvalCount) and d (dismissedCount). A review
	// that reaches the recorder both as a delivery and from a reconcile
	// pass is counted once.
	// +optional
	CountedReviews string `json:"countedReviews,omitempty"`
}

// Bookkeeping is what the recorder keeps on every object it writes, in
// its status, for its own rules: the deliveries it applied (exactly
// once), when the repository got the name the object has (renames), and
// the last reconcile pass that changed it.
type Bookkeeping struct {
	// LastDeliveryID is the X-GitHub-Delivery of the newest delivery applied.
	// +optional
	LastDeliveryID string `json:"lastDeliveryID,omitempty"`
	// RecentDeliveries are the deliveries applied within the redelivery
	// window, newest first, comma separated: "<digest of the delivery
	// id>@<unix seconds, base 36>", with "@<digest of the payload>" on the
	// newest ones that had a payload (pkg/recorder.Remembers reads it). It
	// is written in the same update as the spec, so a retried or
	// redelivered delivery can tell that its change is already in place,
	// and a payload replayed under another delivery id is recognised.
	// +optional
	RecentDeliveries string `json:"recentDeliveries,omitempty"`
	// RepositoryNamedAt is when the object's repository had the name in
	// its spec.repository: GitHub's time of the change that gave it, or a
	// reconcile pass's when it read the name from the API. A change older
	// than it never names the object back; the metrics function labels
	// all objects of one repository id with the name of the object named
	// last.
	// +optional
	RepositoryNamedAt *metav1.Time `json:"repositoryNamedAt,omitempty"`
	// ReconciledAt is when a reconcile pass last changed the object.
	// +optional
	ReconciledAt *metav1.Time `json:"reconciledAt,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// PullRequestList is a list of PullRequests.
type PullRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PullRequest `json:"items"`
}

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=br,categories=gitpulse
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Branch",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Pushes",type=integer,JSONPath=`.spec.pushCount`
// +kubebuilder:printcolumn:name="Head",type=string,JSONPath=`.spec.headSHA`,priority=1
// +kubebuilder:printcolumn:name="Last-Push",type=date,JSONPath=`.spec.lastPushAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.repositoryID`
// +kubebuilder:selectablefield:JSONPath=`.spec.repository`
// +kubebuilder:selectablefield:JSONPath=`.spec.name`

// Branch is one branch of a GitHub repository, identified by its
// repository's GitHub id and its name (by the repository's name when no id
// is known).
type Branch struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BranchSpec `json:"spec"`
	// +optional
	Status BranchStatus `json:"status,omitempty"`
}

// BranchSpec is what GitHub last told us about a branch. Name and State keep
// the names and meaning of the original liatrio example.
// +structType=atomic
type BranchSpec struct {
	// Name is the branch name as GitHub spells it (may contain slashes).
	Name string `json:"name"`
	// State is created or deleted.
	// +kubebuilder:validation:Enum=created;deleted
	State string `json:"state"`

	// Repository is GitHub's owner/name of the repository.
	// +optional
	// +kubebuilder:validation:MaxLength=140
	Repository string `json:"repository,omitempty"`
	// RepositoryID is GitHub's repository.id: the repository's identity,
	// which survives renames and transfers (0 when no delivery said it).
	// +optional
	// +kubebuilder:validation:Minimum=0
	RepositoryID int64 `json:"repositoryID,omitempty"`
	// HeadSHA is the commit at the branch's tip after the newest push.
	// +optional
	HeadSHA string `json:"headSHA,omitempty"`
	// PushCount is the number of distinct pushes recorded to this branch.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PushCount int64 `json:"pushCount,omitempty"`
	// LastPushAt is when the newest push happened (GitHub's push time).
	// +optional
	LastPushAt *metav1.Time `json:"lastPushAt,omitempty"`
	// LastPushForced is true when the newest push was a force push.
	// +optional
	LastPushForced bool `json:"lastPushForced,omitempty"`
	// CreatedAt is when the branch was created, as far as GitHub told us.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// DeletedAt is when the branch was deleted.
	// +optional
	DeletedAt *metav1.Time `json:"deletedAt,omitempty"`
	// UpdatedAt is the time of the newest delivery applied; older
	// deliveries never move the object backwards.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
}

// BranchStatus is the recorder's bookkeeping about a branch.
// +structType=atomic
type BranchStatus struct {
	Bookkeeping `json:",inline"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// BranchList is a list of Branches.
type BranchList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Branch `json:"items"`
}
