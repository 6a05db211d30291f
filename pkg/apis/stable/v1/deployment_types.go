package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitHubDeployment states: GitHub's deployment_status states — error,
// failure, inactive, in_progress, queued, pending, success (REST API,
// "Create a deployment status"; go-github's DeploymentStatus.State) and
// waiting (a deployment waiting for an approval, reported by GitHub though
// not in that list: octokit/webhooks.net#52, badges/shields#8521) — plus
// DeploymentStateCreated before any status.
const (
	DeploymentStateCreated    = "created"
	DeploymentStateSuccess    = "success"
	DeploymentStateFailure    = "failure"
	DeploymentStateError      = "error"
	DeploymentStatePending    = "pending"
	DeploymentStateInProgress = "in_progress"
	DeploymentStateQueued     = "queued"
	DeploymentStateInactive   = "inactive"
	DeploymentStateWaiting    = "waiting"
)

// DeploymentStates are every deployment_status state GitHub documents; the
// metrics function counts any other under state "other".
var DeploymentStates = []string{
	DeploymentStateError, DeploymentStateFailure, DeploymentStateInactive, DeploymentStateInProgress,
	DeploymentStatePending, DeploymentStateQueued, DeploymentStateSuccess, DeploymentStateWaiting,
}

// IsDeploymentFailure reports whether a deployment_status state says the
// deployment failed: GitHub's "failure" and "error" both do.
func IsDeploymentFailure(state string) bool {
	return state == DeploymentStateFailure || state == DeploymentStateError
}

// GitHubDeployment has no status subresource, for the reasons PullRequest
// and Branch have none (types.go): the recorder is its only writer and
// writes the status with the change.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ghd;ghdeploy,categories=gitpulse
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Environment",type=string,JSONPath=`.spec.environment`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Ref",type=string,JSONPath=`.spec.ref`
// +kubebuilder:printcolumn:name="SHA",type=string,JSONPath=`.spec.sha`,priority=1
// +kubebuilder:printcolumn:name="Creator",type=string,JSONPath=`.spec.creator`,priority=1
// +kubebuilder:printcolumn:name="Changes",type=integer,JSONPath=`.spec.changeCount`,priority=1
// +kubebuilder:printcolumn:name="First-Success",type=date,JSONPath=`.spec.firstSuccessAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.repositoryID`
// +kubebuilder:selectablefield:JSONPath=`.spec.repository`
// +kubebuilder:selectablefield:JSONPath=`.spec.deploymentID`

// GitHubDeployment is one GitHub deployment (the deployments API: a request
// to deploy a ref to an environment, and the statuses reported for it),
// identified by repository and deployment id. It is not called Deployment
// so that `kubectl get deployment` keeps meaning apps/v1.
type GitHubDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec GitHubDeploymentSpec `json:"spec"`
	// +optional
	Status GitHubDeploymentStatus `json:"status,omitempty"`
}

// GitHubDeploymentSpec is what GitHub told us about a deployment and its
// statuses.
// +structType=atomic
type GitHubDeploymentSpec struct {
	// Repository is GitHub's owner/name of the repository.
	// +kubebuilder:validation:MaxLength=140
	Repository string `json:"repository"`
	// DeploymentID is GitHub's deployment id.
	// +kubebuilder:validation:Minimum=0
	DeploymentID int64 `json:"deploymentID"`
	// RepositoryID is GitHub's repository.id, which survives renames and
	// transfers (0 when no delivery said it).
	// +optional
	// +kubebuilder:validation:Minimum=0
	RepositoryID int64 `json:"repositoryID,omitempty"`
	// Environment is the deployment's environment (deployment.environment;
	// the GitHubSource adapter drops deployment_status.environment).
	// +optional
	Environment string `json:"environment,omitempty"`
	// Ref is the branch, tag or SHA that was deployed, as requested.
	// +optional
	Ref string `json:"ref,omitempty"`
	// SHA is the commit that was deployed.
	// +optional
	SHA string `json:"sha,omitempty"`
	// Task is the deployment's task (usually "deploy").
	// +optional
	Task string `json:"task,omitempty"`
	// Creator is the login of whoever created the deployment.
	// +optional
	Creator string `json:"creator,omitempty"`
	// CreatedAt is when the deployment was created (deployment.created_at).
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// UpdatedAt is the newest deployment.updated_at applied; the fields
	// above never move to an older one.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`

	// State is the state of the newest status (ordered by the status's
	// GitHub time, then its id), or "created" before any status.
	// +optional
	// +kubebuilder:validation:MaxLength=40
	State string `json:"state,omitempty"`
	// StateAt is the GitHub time of that status (updated_at, else
	// created_at).
	// +optional
	StateAt *metav1.Time `json:"stateAt,omitempty"`
	// StateID is that status's id (breaks ties of StateAt).
	// +optional
	StateID int64 `json:"stateID,omitempty"`
	// StatusCount is the number of distinct deployment_status deliveries.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StatusCount int64 `json:"statusCount,omitempty"`
	// FirstSuccessAt is the earliest time of a success status.
	// +optional
	FirstSuccessAt *metav1.Time `json:"firstSuccessAt,omitempty"`
	// FirstFailureAt is the earliest time of a failure or error status.
	// +optional
	FirstFailureAt *metav1.Time `json:"firstFailureAt,omitempty"`

	// Changes are the merged pull requests this deployment shipped to its
	// environment (lead time attribution; see docs/dora.md), attributed
	// when a success status is recorded.
	// +optional
	// +listType=map
	// +listMapKey=number
	Changes []DeployedChange `json:"changes,omitempty"`
	// ChangeCount is len(Changes), for the printer column.
	// +optional
	ChangeCount int64 `json:"changeCount,omitempty"`
}

// DeployedChange is one merged pull request a deployment shipped.
type DeployedChange struct {
	// Number is the pull request number (same repository).
	Number int64 `json:"number"`
	// OpenedAt is when the pull request was opened: lead time runs from
	// here to the deployment's first success.
	// +optional
	OpenedAt *metav1.Time `json:"openedAt,omitempty"`
	// MergedAt is when it was merged.
	// +optional
	MergedAt *metav1.Time `json:"mergedAt,omitempty"`
	// By says why it was attributed: "sha" (its merge commit is the
	// deployed SHA) or "window" (merged into the deployed ref after the
	// environment's previous successful deployment was created and before
	// this one was).
	// +kubebuilder:validation:Enum=sha;window
	By string `json:"by"`
}

// GitHubDeploymentStatus is the recorder's bookkeeping about a deployment.
// +structType=atomic
type GitHubDeploymentStatus struct {
	Bookkeeping `json:",inline"`
	// CountedStatuses are the GitHub ids of the deployment statuses counted
	// in spec.statusCount, comma separated, sorted: a status that reaches
	// the recorder both as a delivery and from a reconcile pass is counted
	// once.
	// +optional
	CountedStatuses string `json:"countedStatuses,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// GitHubDeploymentList is a list of GitHubDeployments.
type GitHubDeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitHubDeployment `json:"items"`
}
