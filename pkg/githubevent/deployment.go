package githubevent

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// The CloudEvent types of deployment deliveries.
const (
	TypeDeployment       = TypePrefix + "deployment"
	TypeDeploymentStatus = TypePrefix + "deployment_status"
)

// Where a deployment delivery's OccurredAt came from.
const (
	TimeFromDeploymentUpdatedAt TimeSource = "deployment.updated_at"
	TimeFromStatusUpdatedAt     TimeSource = "deployment_status.updated_at"
)

// maxEnvironmentBytes is GitHub's limit on an environment name (255
// characters; bytes here, which is stricter only for non-ASCII names).
const maxEnvironmentBytes = 255 * utf8.UTFMax

// DeploymentChange is what a deployment or deployment_status delivery says.
// Both shapes carry every field read here: deployment.{id, sha, ref, task,
// environment, creator.login, created_at, updated_at},
// deployment_status.{id, state, created_at, updated_at} and the repository.
// The adapter's v5 structs drop the top-level action (always "created" for
// both types) and deployment_status.environment, so the environment is
// always deployment.environment (GitHub keeps the two equal for a status
// created without an environment of its own; a status that moves a
// deployment to another environment is not told apart in a cluster).
type DeploymentChange struct {
	ID          int64
	Environment string
	Ref         string
	SHA         string
	Task        string
	Creator     string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Status is set for a deployment_status delivery.
	Status *DeploymentStatusChange
	// Statuses, for a Change built from the REST API (FromAPIDeployment),
	// is every status listed (non-nil, possibly empty); Status is nil then.
	Statuses []DeploymentStatusChange
}

// DeploymentStatusChange is one status of a deployment.
type DeploymentStatusChange struct {
	ID int64
	// State is GitHub's (success, failure, error, pending, in_progress,
	// queued, inactive, waiting), lower-cased.
	State string
	// At is the status's time: updated_at, else created_at.
	At time.Time
}

func (ch *Change) fromDeployment(d *github.Deployment, repo *github.Repository, sender string, st *github.DeploymentStatus, isStatus bool) error {
	if d == nil || d.GetID() <= 0 {
		return fmt.Errorf("%w: %s without a deployment id", ErrMismatch, ch.Event)
	}
	ch.Repository, ch.RepositoryID = repo.GetFullName(), repo.GetID()
	if err := checkRepository(ch.Repository); err != nil {
		return err
	}
	env := d.GetEnvironment()
	if err := checkEnvironment(env); err != nil {
		return fmt.Errorf("%w: %s environment %q: %w", ErrMismatch, ch.Event, env, err)
	}
	ch.Sender = sender
	c := &DeploymentChange{
		ID:          d.GetID(),
		Environment: env,
		Ref:         d.GetRef(),
		SHA:         d.GetSHA(),
		Task:        d.GetTask(),
		Creator:     d.GetCreator().GetLogin(),
		CreatedAt:   orZero(d.GetCreatedAt()),
		UpdatedAt:   orZero(d.GetUpdatedAt()),
	}
	switch {
	case !c.UpdatedAt.IsZero():
		ch.OccurredAt, ch.TimeSource = c.UpdatedAt, TimeFromDeploymentUpdatedAt
	case !c.CreatedAt.IsZero():
		ch.OccurredAt, ch.TimeSource = c.CreatedAt, TimeFromDeploymentUpdatedAt
	}
	if isStatus {
		if st == nil || st.GetState() == "" {
			return fmt.Errorf("%w: deployment_status without a state", ErrMismatch)
		}
		s := &DeploymentStatusChange{ID: st.GetID(), State: strings.ToLower(st.GetState()), At: orZero(st.GetUpdatedAt())}
		if s.At.IsZero() {
			s.At = orZero(st.GetCreatedAt())
		}
		if s.At.IsZero() {
			return fmt.Errorf("%w: deployment_status without created_at or updated_at", ErrMismatch)
		}
		if len(s.State) > 40 {
			return fmt.Errorf("%w: deployment_status state of %d bytes", ErrMismatch, len(s.State))
		}
		ch.OccurredAt, ch.TimeSource = s.At, TimeFromStatusUpdatedAt
		c.Status = s
	}
	ch.Deployment = c
	return nil
}

// checkEnvironment refuses environment names GitHub could never have sent:
// empty (GitHub defaults to "production"), longer than its limit, not UTF-8
// or with control characters (which would break a log line).
func checkEnvironment(env string) error {
	switch {
	case env == "":
		return fmt.Errorf("empty")
	case len(env) > maxEnvironmentBytes:
		return fmt.Errorf("longer than %d bytes", maxEnvironmentBytes)
	case !utf8.ValidString(env):
		return fmt.Errorf("not UTF-8")
	}
	for i, r := range env {
		if unicode.IsControl(r) {
			return fmt.Errorf("control character at byte %d", i)
		}
	}
	return nil
}

// deploymentRules: a deployment or deployment_status delivery, or a
// deployment read from the API with its statuses.
type deploymentRules struct{}

func (deploymentRules) kind() string { return KindGitHubDeployment }

// action is created, the status's state, or reconciled for a deployment
// read from the API.
func (deploymentRules) action(ch Change) string {
	if ch.Deployment.Statuses != nil {
		return stablev1.ActionReconciled
	}
	if ch.Deployment.Status != nil {
		return ch.Deployment.Status.State
	}
	return stablev1.ActionCreated
}

func (deploymentRules) reason(ch Change) string {
	switch {
	case ch.Deployment.Status == nil:
		return stablev1.ReasonDeploymentCreated
	case ch.Deployment.Status.State == stablev1.DeploymentStateSuccess:
		return stablev1.ReasonDeploymentSucceeded
	case stablev1.IsDeploymentFailure(ch.Deployment.Status.State):
		return stablev1.ReasonDeploymentFailed
	}
	return stablev1.ReasonDeploymentStatus
}

func (deploymentRules) message(ch Change, who string) string {
	d := ch.Deployment
	if d.Statuses != nil {
		return fmt.Sprintf("%s read deployment %d of %s (%s) to %s in %s with %d statuses", who, d.ID, d.Ref, short(d.SHA),
			d.Environment, ch.Repository, len(d.Statuses))
	}
	if d.Status == nil {
		return fmt.Sprintf("%s created deployment %d of %s (%s) to %s in %s", who, d.ID, d.Ref, short(d.SHA), d.Environment, ch.Repository)
	}
	return fmt.Sprintf("%s reported deployment %d of %s (%s) to %s in %s: %s", who, d.ID, d.Ref, short(d.SHA), d.Environment,
		ch.Repository, d.Status.State)
}
