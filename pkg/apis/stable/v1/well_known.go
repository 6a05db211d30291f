package v1

// The contract between the recorder (which writes objects and Events) and the
// metrics function (which reads them). Both sides import these names; nothing
// else may spell them.
const (
	// AnnotationRepository holds GitHub's raw owner/name on objects and Events
	// (a slash is not allowed in a label value).
	AnnotationRepository = GroupName + "/repository"
	// AnnotationBranch holds the raw branch name on Branch objects.
	AnnotationBranch = GroupName + "/branch"
	// AnnotationDeliveryID holds the X-GitHub-Delivery GUID on Events.
	AnnotationDeliveryID = GroupName + "/delivery-id"
	// AnnotationRecentDeliveries holds, on PullRequest and Branch objects, the
	// newest delivery ids already applied (comma separated, bounded). It is
	// written in the same update as the spec, so a retried delivery can tell
	// that its change is already in place.
	AnnotationRecentDeliveries = GroupName + "/recent-deliveries"

	// AnnotationLastAppliedDelivery is the delivery that last moved an
	// object's spec, and AnnotationLastAppliedAction that delivery's Event
	// action; written in the same update as the spec, the status is derived
	// from them.
	AnnotationLastAppliedDelivery = GroupName + "/last-applied-delivery"
	AnnotationLastAppliedAction   = GroupName + "/last-applied-action"

	// LabelRepositoryOwner and LabelRepositoryName carry the repository as
	// label-safe values, for label selectors.
	LabelRepositoryOwner = GroupName + "/repository-owner"
	LabelRepositoryName  = GroupName + "/repository-name"
	// LabelPullRequestNumber carries the pull request number.
	LabelPullRequestNumber = GroupName + "/number"

	// ReportingController is the Event reportingController (field selector
	// reportingComponent) of every Event the recorder writes.
	ReportingController = "stable.liatr.io/gitpulse-recorder"
	// SourceComponent is the Event source.component of those Events.
	SourceComponent = "gitpulse-recorder"
)

// The kinds an Event's involvedObject names.
const (
	KindPullRequest = "PullRequest"
	KindBranch      = "Branch"
)

// Event reasons written by the recorder.
const (
	ReasonPullRequestOpened           = "PullRequestOpened"
	ReasonPullRequestReopened         = "PullRequestReopened"
	ReasonPullRequestClosed           = "PullRequestClosed"
	ReasonPullRequestMerged           = "PullRequestMerged"
	ReasonPullRequestSynchronized     = "PullRequestSynchronized"
	ReasonPullRequestEdited           = "PullRequestEdited"
	ReasonPullRequestReadyForReview   = "PullRequestReadyForReview"
	ReasonPullRequestConvertedToDraft = "PullRequestConvertedToDraft"
	// ReasonPullRequestUpdated covers every other pull_request action
	// (labeled, assigned, review_requested, ...); the Event's action field
	// says which.
	ReasonPullRequestUpdated = "PullRequestUpdated"

	ReasonBranchCreated = "BranchCreated"
	ReasonBranchPushed  = "BranchPushed"
	ReasonBranchDeleted = "BranchDeleted"
)

// Branch Event actions (the Event's action field); pull request Events carry
// GitHub's pull_request action, except that a closed pull request that was
// merged is reported with action "merged".
const (
	ActionCreated = "created"
	ActionPushed  = "pushed"
	ActionDeleted = "deleted"
	ActionMerged  = "merged"
)

// GitHub's pull_request actions the recorder treats specially (an Event
// carries GitHub's action as it is, ActionMerged aside).
const (
	ActionOpened           = "opened"
	ActionReopened         = "reopened"
	ActionClosed           = "closed"
	ActionSynchronize      = "synchronize"
	ActionEdited           = "edited"
	ActionReadyForReview   = "ready_for_review"
	ActionConvertedToDraft = "converted_to_draft"
)

// PullRequestActions are every pull_request action GitHub documents, plus
// ActionMerged: the metrics function counts any other under action "other"
// (bounded label values, exact totals).
var PullRequestActions = []string{
	"assigned", "auto_merge_disabled", "auto_merge_enabled", ActionClosed, ActionConvertedToDraft, "demilestoned",
	"dequeued", ActionEdited, "enqueued", "labeled", "locked", ActionMerged, "milestoned", ActionOpened,
	ActionReadyForReview, ActionReopened, "review_request_removed", "review_requested", ActionSynchronize,
	"unassigned", "unlabeled", "unlocked",
}

// BranchActions are the actions of Branch Events.
var BranchActions = []string{ActionCreated, ActionPushed, ActionDeleted}

// Reviews and deployments (issue 14). A review is recorded on its
// PullRequest with its own Event actions; a deployment and its statuses on
// a GitHubDeployment.
const (
	KindGitHubDeployment = "GitHubDeployment"

	// AnnotationEnvironment holds a deployment's raw environment on
	// GitHubDeployment objects and their Events.
	AnnotationEnvironment = GroupName + "/environment"
	// LabelDeploymentID carries the GitHub deployment id.
	LabelDeploymentID = GroupName + "/deployment-id"

	ReasonPullRequestReviewed        = "PullRequestReviewed"
	ReasonPullRequestReviewEdited    = "PullRequestReviewEdited"
	ReasonPullRequestReviewDismissed = "PullRequestReviewDismissed"
	ReasonDeploymentCreated          = "DeploymentCreated"
	ReasonDeploymentStatus           = "DeploymentStatusReported"
	ReasonDeploymentSucceeded        = "DeploymentSucceeded"
	ReasonDeploymentFailed           = "DeploymentFailed"
)

// Event actions of review Events (pull_request_review's action, prefixed so
// that they never collide with a pull_request action); deployment Events
// carry ActionCreated for a deployment delivery and the status state for a
// deployment_status delivery.
const (
	ActionReviewSubmitted = "review_submitted"
	ActionReviewEdited    = "review_edited"
	ActionReviewDismissed = "review_dismissed"
)

// ReviewActions are the actions of review Events.
var ReviewActions = []string{ActionReviewDismissed, ActionReviewEdited, ActionReviewSubmitted}
