package v1

// The contract between the recorder (which writes objects and Events) and the
// metrics function (which reads them). Both sides import these names; nothing
// else may spell them.
const (
	// AnnotationRepository holds GitHub's owner/name on Events (objects
	// have it in spec.repository, a selectable field:
	// `kubectl get pr --field-selector spec.repository=owner/name`).
	AnnotationRepository = GroupName + "/repository"
	// AnnotationDeliveryID holds the X-GitHub-Delivery GUID on an Event
	// whose name cannot carry it as it stands (read both with DeliveryID).
	AnnotationDeliveryID = GroupName + "/delivery-id"

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

// Renames: a repository renamed or transferred on GitHub keeps its id, and
// so do its objects (their names keep the prefix they were created with).
const (
	// ReasonRenamed is the reason of the Event written on an object whose
	// repository was renamed or transferred (its message says from and to).
	// It is not a delivery: its reportingController is ReconcilerController,
	// which the metrics function's delivery counters do not select.
	ReasonRenamed = "Renamed"
	// ActionRenamed is that Event's action.
	ActionRenamed = "renamed"
)

// Reconcile: what a reconcile pass writes. A pass builds changes
// from the GitHub REST API (backfill and drift repair) instead of a delivery;
// its objects and Events are told apart from delivered ones by these names.
const (
	// ReasonReconciled is the reason of the one Event a pass writes for an
	// object it changed. It is not a delivery: its reportingController is
	// ReconcilerController, so the metrics function's delivery counters
	// (which select ReportingController) never count it.
	ReasonReconciled = "Reconciled"
	// ActionReconciled is that Event's action, and the object's
	// last-applied-action after it.
	ActionReconciled = "reconciled"
	// ReconcilerController is the reportingController of Reconciled Events.
	ReconcilerController = "stable.liatr.io/gitpulse-reconciler"
	// LabelReconcileCursor marks the ConfigMaps in which reconcile passes
	// keep their per-repository cursor (and the figures the metrics
	// function exports about them).
	LabelReconcileCursor = GroupName + "/reconcile-cursor"

	// AnnotationGitHubAppID and AnnotationGitHubAppInstallationID, on a
	// GitHubSource, make reconcile passes authenticate as that GitHub App
	// installation instead of with spec.accessToken's token; the App's
	// PEM private key is then under SecretKeyGitHubAppPrivateKey in the
	// Secret spec.accessToken names (the GitHubSource's controller still
	// uses the token to manage the webhook).
	AnnotationGitHubAppID             = GroupName + "/github-app-id"
	AnnotationGitHubAppInstallationID = GroupName + "/github-app-installation-id"
	SecretKeyGitHubAppPrivateKey      = "githubAppPrivateKey"
)

// Keys of a reconcile cursor ConfigMap's data that the metrics function
// reads (pkg/reconcile writes them, with read-modify-update so counts are
// exact across replicas). Counters are decimal integers, times RFC 3339.
const (
	// CursorScope is the repository (owner/name) or organisation.
	CursorScope = "scope"
	// CursorPassesPrefix + a ReconcileResults value counts passes.
	CursorPassesPrefix = "passes."
	// CursorRedeliveries counts redeliveries requested from GitHub.
	CursorRedeliveries = "redeliveriesRequested"
	// CursorReconciled counts objects a pass changed.
	CursorReconciled = "objectsReconciled"
	// CursorAPIRemaining is GitHub's X-RateLimit-Remaining at the last pass.
	CursorAPIRemaining = "api.remaining"
	// CursorUnrecovered is how many failed deliveries were not yet
	// recovered at the last complete scan, and CursorOldestUnrecovered
	// when the oldest of them was first attempted ("" when none).
	CursorUnrecovered       = "deliveries.unrecovered"
	CursorOldestUnrecovered = "deliveries.oldestUnrecovered"
	// CursorLastPassAt is when the last pass started.
	CursorLastPassAt = "lastPassAt"
	// CursorErrorsPrefix + "<resource>.<reason>" (ReconcileErrorResources,
	// ReconcileErrorReasons) counts GitHub's failed answers to passes.
	CursorErrorsPrefix = "errors."
)

// ReconcileResults are how a pass over one scope ends: ok; partial (its
// time or request budget ran out; the next pass continues); rate_limited
// (GitHub's budget is low or a secondary limit holds); error (nothing
// GitHub was asked succeeded, the credentials were refused, or GitHub
// failed request after request); degraded (every unit of work that could
// be done was, but some failed or still back off from a failure: they are
// retried by later passes).
var ReconcileResults = []string{"ok", "partial", "rate_limited", "error", "degraded"}

// ReconcileErrorResources are what a failed GitHub request of a pass read
// (the resource label of gitpulse_reconcile_errors_total), and
// ReconcileErrorReasons why it failed (its reason label): 404 and 403 are
// GitHub refusing the token (its permissions) or the item gone, apart from
// GitHub's own failures (server_error) and no answer (network).
var (
	ReconcileErrorResources = []string{"repositories", "deliveries", "pulls", "reviews", "branches", "deployments",
		"deployment_statuses"}
	ReconcileErrorReasons = []string{"not_found", "forbidden", "unauthorized", "rate_limited", "server_error",
		"network", "client_error", "other"}
)

// Reviews and deployments, for review time and the DORA keys. A review is
// recorded on its PullRequest with its own Event actions; a deployment and
// its statuses on a GitHubDeployment.
const (
	KindGitHubDeployment = "GitHubDeployment"

	// AnnotationEnvironment holds a deployment's environment on its Events
	// (the GitHubDeployment has it in spec.environment).
	AnnotationEnvironment = GroupName + "/environment"

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
