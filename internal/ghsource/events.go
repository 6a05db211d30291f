package ghsource

import (
	"strconv"
	"strings"

	gh "gopkg.in/go-playground/webhooks.v5/github"
)

// SubjectAndExtensions computes the CloudEvent subject and extensions the
// adapter sets, as eventing-github's pkg/common/events.go
// SubjectAndExtensionsFromGitHubEvent does. Upstream switches on the event
// name and then asserts the payload type; each name has exactly one payload
// type (installation and integration_installation share theirs, with the same
// result), so switching on the payload type is the same function.
func SubjectAndExtensions(payload any) (string, map[string]any) {
	var subject string
	exts := map[string]any{}
	repo := func(owner, name, sender string) {
		exts["owner"], exts["repository"], exts["sender"] = owner, name, sender
	}
	switch p := payload.(type) {
	case gh.CheckRunPayload:
		subject = strconv.FormatInt(p.CheckRun.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.CheckSuitePayload:
		subject = strconv.FormatInt(p.CheckSuite.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.CommitCommentPayload:
		subject = lastPathPortion(p.Comment.HTMLURL)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.CreatePayload:
		subject = p.RefType
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["ref"] = p.Ref
	case gh.DeletePayload:
		subject = p.RefType
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["ref"] = p.Ref
	case gh.DeploymentPayload:
		subject = strconv.FormatInt(p.Deployment.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.DeploymentStatusPayload:
		subject = strconv.FormatInt(p.Deployment.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.ForkPayload:
		subject = strconv.FormatInt(p.Forkee.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.GollumPayload:
		pages := make([]string, 0, len(p.Pages))
		for _, page := range p.Pages {
			pages = append(pages, page.PageName)
		}
		subject = strings.Join(pages, ",")
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.InstallationPayload:
		subject = strconv.FormatInt(p.Installation.ID, 10)
		exts["installation"], exts["sender"], exts["action"] = p.Installation.ID, p.Sender.Login, p.Action
	case gh.InstallationRepositoriesPayload:
		subject = strconv.FormatInt(p.Installation.ID, 10)
		exts["installation"], exts["sender"], exts["action"] = p.Installation.ID, p.Sender.Login, p.Action
	case gh.IssueCommentPayload:
		subject = lastPathPortion(p.Comment.HTMLURL)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.IssuesPayload:
		subject = strconv.FormatInt(p.Issue.Number, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
		if p.Label != nil {
			exts["label"] = p.Label.Name
		}
		if p.Assignee != nil {
			exts["assignee"] = p.Assignee.Login
		}
	case gh.LabelPayload:
		subject = p.Label.Name
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"], exts["label"] = p.Action, p.Label.Name
	case gh.MemberPayload:
		subject = strconv.FormatInt(p.Member.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.MembershipPayload:
		subject = strconv.FormatInt(p.Member.ID, 10)
		exts["owner"], exts["scope"], exts["sender"], exts["action"] = p.Organization.Login, p.Scope, p.Sender.Login, p.Action
	case gh.MilestonePayload:
		subject = strconv.FormatInt(p.Milestone.Number, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.OrganizationPayload:
		subject = p.Action
		exts["owner"], exts["sender"], exts["action"] = p.Organization.Login, p.Sender.Login, p.Action
	case gh.OrgBlockPayload:
		subject = p.Action
		exts["owner"], exts["sender"], exts["action"] = p.Organization.Login, p.Sender.Login, p.Action
	case gh.PageBuildPayload:
		subject = strconv.FormatInt(p.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.PingPayload:
		subject = strconv.Itoa(p.HookID)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.ProjectCardPayload:
		subject = p.Action
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.ProjectColumnPayload:
		subject = p.Action
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.ProjectPayload:
		subject = p.Action
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.PublicPayload:
		subject = strconv.FormatInt(p.Repository.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.PullRequestPayload:
		subject = strconv.FormatInt(p.PullRequest.Number, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["installation"], exts["action"], exts["number"] = p.Installation.ID, p.Action, p.Number
		exts["label"] = p.Label.Name
		if p.Assignee != nil {
			exts["assignee"] = p.Assignee.Login
		}
	case gh.PullRequestReviewCommentPayload:
		subject = strconv.FormatInt(p.Comment.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["installation"], exts["action"] = p.Installation.ID, p.Action
	case gh.PullRequestReviewPayload:
		subject = strconv.FormatInt(p.Review.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["installation"], exts["action"], exts["review"] = p.Installation.ID, p.Action, p.Review.State
	case gh.PushPayload:
		subject = lastPathPortion(p.Compare)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["installation"], exts["pusher"], exts["ref"] = p.Installation.ID, p.Pusher.Name, p.Ref
		exts["created"], exts["deleted"], exts["forced"] = p.Created, p.Deleted, p.Forced
	case gh.ReleasePayload:
		subject = p.Release.TagName
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["installation"], exts["action"], exts["release"] = p.Installation.ID, p.Action, p.Release.Name
	case gh.RepositoryPayload:
		subject = strconv.FormatInt(p.Repository.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	case gh.RepositoryVulnerabilityAlertPayload:
		subject = strconv.FormatInt(p.Alert.ID, 10)
		exts["action"] = p.Action
	case gh.SecurityAdvisoryPayload:
		subject = p.SecurityAdvisory.GHSAID
		exts["action"] = p.Action
	case gh.StatusPayload:
		subject = p.Sha
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["state"], exts["name"], exts["context"] = p.State, p.Name, p.Context
	case gh.TeamPayload:
		subject = strconv.FormatInt(p.Team.ID, 10)
		exts["sender"], exts["action"] = p.Sender.Login, p.Action
	case gh.TeamAddPayload:
		subject = strconv.FormatInt(p.Repository.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
	case gh.WatchPayload:
		subject = strconv.FormatInt(p.Repository.ID, 10)
		repo(p.Repository.Owner.Login, p.Repository.Name, p.Sender.Login)
		exts["action"] = p.Action
	}
	return subject, exts
}

// lastPathPortion is events.go's helper: what follows the last "/".
func lastPathPortion(url string) string {
	if i := strings.LastIndex(url, "/"); i != -1 {
		return url[i+1:]
	}
	return ""
}
