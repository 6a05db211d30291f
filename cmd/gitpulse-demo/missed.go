package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liatrio/gitpulse/internal/fakegithub"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// missedDelivery shows that no delivery is lost: GitHub (a fake GitHub REST
// API in this process, internal/fakegithub) delivers a pull request while the
// webhook's receiver is unreachable, so the delivery fails and GitHub never
// retries it. A GitHubSource naming that webhook is applied, a reconcile
// pass is triggered (as `make run` does every GITPULSE_RECONCILE_INTERVAL),
// GitHub is asked to redeliver, and the delivery is recorded — once.
func missedDelivery(ctx context.Context, env map[string]string, kubectl string) error {
	const repo, token = "acme/recovery", "demo-token"
	ns := env["GITPULSE_NAMESPACE"]
	gh := fakegithub.New(fakegithub.Options{Token: token})
	defer gh.Close()
	hook := gh.AddRepoHook(repo, "http://127.0.0.1:1/webhook", []byte(env["GITPULSE_WEBHOOK_SECRET"])) // nothing listens there
	at := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	id := fmt.Sprintf("dem0%04x-0000-4000-8000-%012x", time.Now().Unix()&0xffff, time.Now().UnixNano()&0xffffffffffff)
	body := ghwebhook.PullRequest{Repo: repo, Number: 42, Action: "opened", User: "octocat", Title: "Delivered while the receiver was down",
		Head: "fix/outage", HeadSHA: "4242424242424242424242424242424242424242", CreatedAt: at, UpdatedAt: at}.Payload()
	code := gh.Deliver(ctx, repo, ghwebhook.Delivery{Event: "pull_request", ID: id, Body: body})
	fmt.Printf("\nGitHub delivers pull_request %s #42 while the receiver is unreachable -> status %d (failed; GitHub never retries)\n", repo, code)
	gh.SetHookURL(hook, env["GITPULSE_WEBHOOK_URL"])

	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		return err
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	_, err = kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gitpulse-demo-github"},
		Data: map[string][]byte{"accessToken": []byte(token), "secretToken": []byte(env["GITPULSE_WEBHOOK_SECRET"])}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	sources := dyn.Resource(reconcile.GitHubSources).Namespace(ns)
	src := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sources.knative.dev/v1alpha1", "kind": "GitHubSource",
		"metadata": map[string]any{"name": "demo-recovery"},
		"spec": map[string]any{
			"ownerAndRepository": repo, "githubAPIURL": gh.URL(),
			"eventTypes":  []any{"pull_request", "push", "create", "delete"},
			"accessToken": map[string]any{"secretKeyRef": map[string]any{"name": "gitpulse-demo-github", "key": "accessToken"}},
			"secretToken": map[string]any{"secretKeyRef": map[string]any{"name": "gitpulse-demo-github", "key": "secretToken"}},
		},
	}}
	_ = sources.Delete(ctx, "demo-recovery", metav1.DeleteOptions{})
	got, err := sources.Create(ctx, src, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	// The GitHubSource's controller records the webhook id it created.
	_ = unstructured.SetNestedField(got.Object, strconv.FormatInt(hook, 10), "status", "webhookIDKey")
	if _, err := sources.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		return err
	}
	// The fake GitHub lives only as long as this command.
	defer sources.Delete(context.Background(), "demo-recovery", metav1.DeleteOptions{})

	fmt.Printf("$ kubectl apply GitHubSource demo-recovery (%s, webhook %d) and POST a %s CloudEvent to %s\n",
		repo, hook, reconcile.EventType, env["GITPULSE_EVENTS_URL"])
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		return err
	}
	e := cloudevents.NewEvent()
	e.SetID("demo-reconcile-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	e.SetType(reconcile.EventType)
	e.SetSource("gitpulse-demo")
	if res := c.Send(cloudevents.ContextWithTarget(ctx, env["GITPULSE_EVENTS_URL"]), e); !cloudevents.IsACK(res) {
		return fmt.Errorf("reconcile trigger: %v", res)
	}
	gh.Wait()
	for _, a := range gh.Attempts(id) {
		fmt.Printf("  attempt %d: redelivery=%v status=%q code=%d\n", a.GetID(), a.GetRedelivery(), a.GetStatus(), a.GetStatusCode())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kube.CoreV1().Events(ns).Get(ctx, naming.EventName(id), metav1.GetOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the redelivered delivery %s was not recorded: %v", id, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The next pass sees the redelivery's success: nothing left to recover.
	e.SetID("demo-reconcile-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	if res := c.Send(cloudevents.ContextWithTarget(ctx, env["GITPULSE_EVENTS_URL"]), e); !cloudevents.IsACK(res) {
		return fmt.Errorf("reconcile trigger: %v", res)
	}
	// The objects carry no labels; spec.repository is a selectable field
	// (crds/stable.liatr.io_pullrequests.yaml).
	fmt.Printf("\n$ kubectl get pullrequests -n %s --field-selector spec.repository=%s\n", ns, repo)
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", env["KUBECONFIG"], "-n", ns, "get", "pullrequests",
		"--field-selector", "spec.repository="+repo)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	fmt.Printf("\nthe missed delivery %s was recovered and recorded once (Event %s)\n", id, naming.EventName(id))
	return nil
}
