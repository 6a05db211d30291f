package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// GitHubSources is the Knative GitHubSource resource
// (knative-extensions/eventing-github pkg/apis/sources/v1alpha1,
// githubsource_types.go). It is read through the dynamic client, as
// unstructured objects, so gitpulse needs none of eventing-github's Go
// types, only the fields below.
var GitHubSources = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1alpha1", Resource: "githubsources"}

// DefaultAPIURL is GitHub's REST API, what a GitHubSource without
// spec.githubAPIURL talks to.
const DefaultAPIURL = "https://api.github.com/"

// Source is what a pass needs from one GitHubSource.
type Source struct {
	// Name and UID are the GitHubSource's (logs, the cursor's owner).
	Name string
	UID  types.UID
	// Owner and Repo are spec.ownerAndRepository split as eventing-github's
	// parseOwnerRepoFrom does (pkg/reconciler/source/githubsource.go): Repo
	// is empty for an organisation.
	Owner, Repo string
	// APIURL is spec.githubAPIURL (GitHub Enterprise, e.g.
	// https://github.example.com/api/v3/), else DefaultAPIURL; always with
	// a trailing slash, as go-github requires of a BaseURL.
	APIURL string
	// Token is the value spec.accessToken.secretKeyRef names.
	Token string
	// AppID, InstallationID and AppKey, when AppID is set, authenticate
	// as a GitHub App installation instead of with Token (annotations
	// stablev1.AnnotationGitHubAppID and ...InstallationID, the PEM key
	// under stablev1.SecretKeyGitHubAppPrivateKey in the token's Secret).
	AppID, InstallationID int64
	AppKey                []byte
	// HookID is status.webhookIDKey, the id GitHub gave the webhook the
	// source's controller created (eventing-github webhook_client.go
	// Create: strconv.FormatInt(*h.ID, 10)); 0 until it has one.
	HookID int64
}

// Scope is the source's "owner/repo", or "owner" for an organisation.
func (s Source) Scope() string {
	if s.Repo == "" {
		return s.Owner
	}
	return s.Owner + "/" + s.Repo
}

// Discover reads the GitHubSources in namespace and the token each names.
// A source that cannot be used (malformed, its Secret missing) is reported
// in errs and left out; the others are reconciled all the same.
func Discover(ctx context.Context, dyn dynamic.Interface, kube kubernetes.Interface, namespace string) (sources []Source, errs []error, err error) {
	list, err := dyn.Resource(GitHubSources).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		// The CRD is not installed: nothing to reconcile.
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing GitHubSources in %s: %w", namespace, err)
	}
	tokens := map[string]string{} // secret/key -> value, read once per pass
	for i := range list.Items {
		src, err := fromObject(ctx, kube, namespace, &list.Items[i], tokens)
		if err != nil {
			errs = append(errs, fmt.Errorf("GitHubSource %s/%s: %w", namespace, list.Items[i].GetName(), err))
			continue
		}
		sources = append(sources, src)
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	return sources, errs, nil
}

func fromObject(ctx context.Context, kube kubernetes.Interface, namespace string, u *unstructured.Unstructured, tokens map[string]string) (Source, error) {
	src := Source{Name: u.GetName(), UID: u.GetUID()}
	ownerAndRepo, _, _ := unstructured.NestedString(u.Object, "spec", "ownerAndRepository")
	parts := strings.Split(ownerAndRepo, "/")
	if ownerAndRepo == "" || len(parts) > 2 || parts[0] == "" || (len(parts) == 2 && parts[1] == "") {
		return src, fmt.Errorf("spec.ownerAndRepository %q is not owner/repository or an organisation", ownerAndRepo)
	}
	src.Owner = parts[0]
	if len(parts) == 2 {
		src.Repo = parts[1]
	}
	src.APIURL, _, _ = unstructured.NestedString(u.Object, "spec", "githubAPIURL")
	if src.APIURL == "" {
		src.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(src.APIURL, "/") {
		src.APIURL += "/"
	}
	if id, _, _ := unstructured.NestedString(u.Object, "status", "webhookIDKey"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return src, fmt.Errorf("status.webhookIDKey %q is not a webhook id", id)
		}
		src.HookID = n
	}
	name, _, _ := unstructured.NestedString(u.Object, "spec", "accessToken", "secretKeyRef", "name")
	key, _, _ := unstructured.NestedString(u.Object, "spec", "accessToken", "secretKeyRef", "key")
	if name == "" || key == "" {
		return src, fmt.Errorf("spec.accessToken.secretKeyRef names no Secret and key")
	}
	if app := u.GetAnnotations()[stablev1.AnnotationGitHubAppID]; app != "" {
		var err1, err2 error
		src.AppID, err1 = strconv.ParseInt(app, 10, 64)
		src.InstallationID, err2 = strconv.ParseInt(u.GetAnnotations()[stablev1.AnnotationGitHubAppInstallationID], 10, 64)
		if err1 != nil || err2 != nil || src.AppID <= 0 || src.InstallationID <= 0 {
			return src, fmt.Errorf("annotations %s and %s must both be GitHub ids",
				stablev1.AnnotationGitHubAppID, stablev1.AnnotationGitHubAppInstallationID)
		}
		key = stablev1.SecretKeyGitHubAppPrivateKey
	}
	ref := name + "/" + key
	value, ok := tokens[ref]
	if !ok {
		secret, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return src, fmt.Errorf("reading the access token: %w", err)
		}
		value = strings.TrimSpace(string(secret.Data[key]))
		if value == "" {
			return src, fmt.Errorf("Secret %s has no key %q", name, key)
		}
		tokens[ref] = value
	}
	if src.AppID != 0 {
		src.AppKey = []byte(value)
	} else {
		src.Token = value
	}
	return src, nil
}
