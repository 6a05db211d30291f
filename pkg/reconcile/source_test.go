package reconcile

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

func TestSource_ScopeIsTheRepositoryOrTheOrganisation(t *testing.T) {
	if got := (Source{Owner: "acme", Repo: "api"}).Scope(); got != "acme/api" {
		t.Errorf("repository scope %q", got)
	}
	if got := (Source{Owner: "acme"}).Scope(); got != "acme" {
		t.Errorf("organisation scope %q", got)
	}
}

// githubSource is a GitHubSource as the dynamic client reads it.
func githubSource(spec map[string]any, status map[string]any, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	if status != nil {
		u.Object["status"] = status
	}
	u.SetName("src")
	u.SetUID("uid-1")
	u.SetAnnotations(annotations)
	return u
}

func tokenRef(name, key string) map[string]any {
	return map[string]any{"secretKeyRef": map[string]any{"name": name, "key": key}}
}

// The Secrets are given as already read (fromObject reads each once per
// pass), so no API server is asked.
func TestSource_FromAGitHubSource(t *testing.T) {
	tokens := map[string]string{"gh/token": "ghp_x", "app/" + stablev1.SecretKeyGitHubAppPrivateKey: "PEM"}
	appAnnotations := map[string]string{stablev1.AnnotationGitHubAppID: "12", stablev1.AnnotationGitHubAppInstallationID: "34"}
	for _, tt := range []struct {
		name        string
		spec        map[string]any
		status      map[string]any
		annotations map[string]string
		want        Source // Name and UID aside
		wantErr     string
	}{
		{name: "a repository on github.com",
			spec: map[string]any{"ownerAndRepository": "acme/api", "accessToken": tokenRef("gh", "token")},
			want: Source{Owner: "acme", Repo: "api", APIURL: DefaultAPIURL, Token: "ghp_x"}},
		{name: "an organisation on GitHub Enterprise, with its webhook",
			spec: map[string]any{"ownerAndRepository": "acme", "githubAPIURL": "https://github.example.com/api/v3",
				"accessToken": tokenRef("gh", "token")},
			status: map[string]any{"webhookIDKey": "4711"},
			want:   Source{Owner: "acme", APIURL: "https://github.example.com/api/v3/", Token: "ghp_x", HookID: 4711}},
		{name: "a GitHub App installation: the private key from the token's Secret",
			spec:        map[string]any{"ownerAndRepository": "acme/api", "accessToken": tokenRef("app", "token")},
			annotations: appAnnotations,
			want:        Source{Owner: "acme", Repo: "api", APIURL: DefaultAPIURL, AppID: 12, InstallationID: 34, AppKey: []byte("PEM")}},
		{name: "no ownerAndRepository", spec: map[string]any{"accessToken": tokenRef("gh", "token")},
			wantErr: "spec.ownerAndRepository"},
		{name: "three parts", spec: map[string]any{"ownerAndRepository": "acme/api/x", "accessToken": tokenRef("gh", "token")},
			wantErr: "spec.ownerAndRepository"},
		{name: "no owner", spec: map[string]any{"ownerAndRepository": "/api", "accessToken": tokenRef("gh", "token")},
			wantErr: "spec.ownerAndRepository"},
		{name: "no repository after the slash", spec: map[string]any{"ownerAndRepository": "acme/", "accessToken": tokenRef("gh", "token")},
			wantErr: "spec.ownerAndRepository"},
		{name: "a webhook id that is not a number",
			spec:    map[string]any{"ownerAndRepository": "acme/api", "accessToken": tokenRef("gh", "token")},
			status:  map[string]any{"webhookIDKey": "abc"},
			wantErr: "status.webhookIDKey"},
		{name: "no Secret named", spec: map[string]any{"ownerAndRepository": "acme/api"},
			wantErr: "secretKeyRef"},
		{name: "an App id without an installation id",
			spec:        map[string]any{"ownerAndRepository": "acme/api", "accessToken": tokenRef("app", "token")},
			annotations: map[string]string{stablev1.AnnotationGitHubAppID: "12"},
			wantErr:     stablev1.AnnotationGitHubAppInstallationID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, err := fromObject(context.Background(), nil, "ns", githubSource(tt.spec, tt.status, tt.annotations), tokens)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name, tt.want.UID = "src", "uid-1"
			if src.Owner != tt.want.Owner || src.Repo != tt.want.Repo || src.APIURL != tt.want.APIURL ||
				src.Token != tt.want.Token || src.HookID != tt.want.HookID || src.AppID != tt.want.AppID ||
				src.InstallationID != tt.want.InstallationID || string(src.AppKey) != string(tt.want.AppKey) ||
				src.Name != tt.want.Name || src.UID != tt.want.UID {
				t.Errorf("source %+v, want %+v", src, tt.want)
			}
		})
	}
}
