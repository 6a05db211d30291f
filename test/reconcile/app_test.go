package reconcile_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// GitHub App authentication (ghinstallation) instead of the token: the
// GitHubSource's annotations name the App and its installation, the App's
// key is in the token's Secret; a pass gets an installation token (one,
// reused by later passes) and recovers a failed delivery with it. A key
// that is not the App's gets no token: the source's pass ends in error.
func TestGitHubApp_PassAuthenticatesAsTheInstallation(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const appID, installationID = 4242, 777
	annotations := map[string]string{
		stablev1.AnnotationGitHubAppID:             strconv.Itoa(appID),
		stablev1.AnnotationGitHubAppInstallationID: strconv.Itoa(installationID),
	}
	for _, tt := range []struct {
		name   string
		key    *rsa.PrivateKey
		result string
	}{
		{"the App's key", key, reconcile.ResultOK},
		{"another key", other, reconcile.ResultError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.gh.AddAppInstallation(appID, installationID, &key.PublicKey)
			pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(tt.key)})
			sec, err := w.env.Kube.CoreV1().Secrets(w.ns).Get(context.Background(), "gitpulse-github", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// No usable token: only the App can authenticate.
			sec.Data["accessToken"] = []byte("not-a-token")
			sec.Data[stablev1.SecretKeyGitHubAppPrivateKey] = pemKey
			if _, err := w.env.Kube.CoreV1().Secrets(w.ns).Update(context.Background(), sec, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			w.source("widgets", repo, w.hook, annotations)
			w.outage.Store(true)
			id, _ := w.deliverPR(1, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
			w.outage.Store(false)
			r := w.reconciler()
			rep := w.pass(r)
			if rep.Results[tt.result] != 1 {
				t.Fatalf("report %+v, want %s", rep, tt.result)
			}
			if tt.result != reconcile.ResultOK {
				return
			}
			if w.gh.Redeliveries(id) != 1 || !w.hasEvent(id) {
				t.Fatalf("%d redeliveries, recorded %v", w.gh.Redeliveries(id), w.hasEvent(id))
			}
			w.pass(r)
			if n := w.gh.InstallationTokens(); n != 1 {
				t.Errorf("%d installation tokens for two passes, want 1 (reused until it expires)", n)
			}
		})
	}
}
