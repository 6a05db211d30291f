package eventingstack

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// DeployOptions describe one namespace's event routing, made from the same
// files a cluster deployment uses.
type DeployOptions struct {
	// Namespace replaces the namespace the files name (gitpulse).
	Namespace string
	// BrokerFile is config/eventing/broker.yaml: applied as is, delivery
	// spec (retry, backoff, dead-letter sink) included.
	BrokerFile string
	// DeadLetterFile is config/eventing/dead-letter.yaml: the Knative
	// Service the Broker's deadLetterSink names; its address is routed to
	// DeadLetterPort.
	DeadLetterFile string
	DeadLetterPort int
	// FuncYAML is the function's func.yaml: a Knative Service named after
	// it is routed to FunctionPort, and one Trigger per
	// deploy.subscriptions entry is created, as `kn func deploy` does.
	FuncYAML     string
	FunctionPort int
}

// Routing is a deployed Broker with its Triggers.
type Routing struct {
	Namespace string
	Broker    string
	// BrokerURL is the Broker's ingress on this machine.
	BrokerURL string
	// Triggers are the names of the Triggers made from func.yaml.
	Triggers []string
	// FunctionHost and DeadLetterHost are the cluster host names the
	// Broker delivers to (routed by the Proxy).
	FunctionHost, DeadLetterHost string
}

// funcYAML is the part of kn func's func.yaml that deploy reads for
// Triggers (knative/func pkg/functions/function.go: Name,
// Deploy.Subscriptions{Source, Filters}).
type funcYAML struct {
	Name   string `json:"name"`
	Deploy struct {
		Namespace     string `json:"namespace"`
		Subscriptions []struct {
			Source  string            `json:"source"`
			Filters map[string]string `json:"filters"`
		} `json:"subscriptions"`
	} `json:"deploy"`
}

// serviceStandIn is a CustomResourceDefinition for Knative Serving's
// Service kind, without Serving: no controller runs for it, Deploy writes
// the status.address a Serving controller would. It lets config/'s
// dead-letter Service and the Triggers' subscriber refs resolve as in a
// cluster (eventing resolves any kind with status.address.url: the
// Addressable duck type).
func serviceStandIn() *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "services.serving.knative.dev",
			Labels: map[string]string{"duck.knative.dev/addressable": "true"}},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "serving.knative.dev",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "services", Singular: "service", Kind: "Service",
				ListKind: "ServiceList", ShortNames: []string{"ksvc", "kservice"}},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: &preserve,
				}},
			}},
		},
	}
}

// Deploy creates the Broker, the dead-letter Service and the function's
// Service and Triggers in opts.Namespace, routes their addresses, and
// waits until the Broker and every Trigger are Ready and the ingress
// accepts events.
func (s *Stack) Deploy(ctx context.Context, opts DeployOptions) (*Routing, error) {
	ns := opts.Namespace
	kube, err := kubernetes.NewForConfig(s.opts.Config)
	if err != nil {
		return nil, err
	}
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}

	dl, err := readObjects("", opts.DeadLetterFile)
	if err != nil {
		return nil, err
	}
	if len(dl) != 1 || dl[0].GetKind() != "Service" {
		return nil, fmt.Errorf("%s: want one Knative Service", opts.DeadLetterFile)
	}
	dl[0].SetNamespace(ns)
	if _, err := s.addressable(ctx, dl[0], opts.DeadLetterPort); err != nil {
		return nil, err
	}

	b, err := os.ReadFile(opts.FuncYAML)
	if err != nil {
		return nil, err
	}
	var fy funcYAML
	if err := yaml.Unmarshal(b, &fy); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.FuncYAML, err)
	}
	fn := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": fy.Name, "namespace": ns},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"image": "local-process"}}}}},
	}}
	fn, err = s.addressable(ctx, fn, opts.FunctionPort)
	if err != nil {
		return nil, err
	}

	brokers, err := readObjects("", opts.BrokerFile)
	if err != nil {
		return nil, err
	}
	if len(brokers) != 1 || brokers[0].GetKind() != "Broker" {
		return nil, fmt.Errorf("%s: want one Broker", opts.BrokerFile)
	}
	broker := brokers[0]
	fileNS := broker.GetNamespace()
	broker.SetNamespace(ns)
	if refNS, ok, _ := unstructured.NestedString(broker.Object, "spec", "delivery", "deadLetterSink", "ref", "namespace"); ok && refNS == fileNS {
		unstructured.SetNestedField(broker.Object, ns, "spec", "delivery", "deadLetterSink", "ref", "namespace")
	}
	if _, err := s.apply.create(ctx, broker); err != nil {
		return nil, err
	}

	r := &Routing{Namespace: ns, Broker: broker.GetName(), BrokerURL: s.IngressURL(ns, broker.GetName()),
		FunctionHost: ServiceHost(fy.Name, ns), DeadLetterHost: ServiceHost(dl[0].GetName(), ns)}
	// knative/func pkg/knative/deployer.go createTriggers: one Trigger per
	// subscription, named <ksvc>-function-trigger-<i>, owned by the ksvc,
	// subscriber = the ksvc, filter = the subscription's filters, no
	// delivery spec (so the Broker's applies).
	for i, sub := range fy.Deploy.Subscriptions {
		attrs := map[string]any{}
		for k, v := range sub.Filters {
			attrs[k] = v
		}
		name := fmt.Sprintf("%s-function-trigger-%d", fy.Name, i)
		t := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
			"metadata": map[string]any{"name": name, "namespace": ns,
				"ownerReferences": []any{map[string]any{"apiVersion": "serving.knative.dev/v1", "kind": "Service",
					"name": fn.GetName(), "uid": string(fn.GetUID())}}},
			"spec": map[string]any{
				"broker": sub.Source,
				"subscriber": map[string]any{"ref": map[string]any{
					"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": fy.Name}},
				"filter": map[string]any{"attributes": attrs},
			},
		}}
		if _, err := s.apply.create(ctx, t); err != nil {
			return nil, err
		}
		r.Triggers = append(r.Triggers, name)
	}

	if err := s.waitReady(ctx, "eventing.knative.dev/v1", "Broker", ns, r.Broker); err != nil {
		return nil, err
	}
	for _, t := range r.Triggers {
		if err := s.waitReady(ctx, "eventing.knative.dev/v1", "Trigger", ns, t); err != nil {
			return nil, err
		}
	}
	if err := s.waitIngress(ctx, r.BrokerURL); err != nil {
		return nil, err
	}
	// Ready is written by the controllers; the filter and the channel
	// dispatcher learn about Triggers and subscriptions from their own
	// informers a moment later, and on a loaded machine an event sent in that
	// moment reached only the last Trigger. Give them that moment.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return r, nil
}

// addressable creates a Knative Service (stand-in kind) and writes the
// status Serving would: Ready, with the cluster-local address, which the
// Proxy routes to port.
func (s *Stack) addressable(ctx context.Context, u *unstructured.Unstructured, port int) (*unstructured.Unstructured, error) {
	out, err := s.apply.create(ctx, u)
	if err != nil {
		return nil, err
	}
	host := ServiceHost(u.GetName(), u.GetNamespace())
	now := time.Now().UTC().Format(time.RFC3339)
	out.Object["status"] = map[string]any{
		"observedGeneration": out.GetGeneration(),
		"url":                "http://" + host,
		"address":            map[string]any{"url": "http://" + host},
		"conditions":         []any{map[string]any{"type": "Ready", "status": "True", "lastTransitionTime": now}},
	}
	if err := s.apply.updateStatus(ctx, out); err != nil {
		return nil, err
	}
	s.proxy.Route(host, port)
	return out, nil
}

// waitReady waits for the Ready condition of a Knative object.
func (s *Stack) waitReady(ctx context.Context, apiVersion, kind, ns, name string) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := s.checkProcesses(); err != nil {
			return false, err
		}
		u, err := s.apply.get(ctx, apiVersion, kind, ns, name)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		var notReady []string
		for _, c := range conds {
			cm := c.(map[string]any)
			if cm["type"] == "Ready" && cm["status"] == "True" {
				return true, nil
			}
			if cm["status"] != "True" {
				notReady = append(notReady, fmt.Sprintf("%v=%v (%v: %v)", cm["type"], cm["status"], cm["reason"], cm["message"]))
			}
		}
		last = strings.Join(notReady, "; ")
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%s %s/%s not Ready: %w (last: %s)", kind, ns, name, err, last)
	}
	return nil
}

// waitIngress waits until the ingress knows the Broker: it answers 404 for
// a Broker its informer has not seen yet. The probe's type matches no
// Trigger, so it reaches no function.
func (s *Stack) waitIngress(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 30 * time.Second}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte("{}")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", fmt.Sprintf("readiness-%d", time.Now().UnixNano()))
		req.Header.Set("Ce-Type", "dev.gitpulse.local.readiness-probe")
		req.Header.Set("Ce-Source", "gitpulse/eventingstack")
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode/100 == 2, nil
	})
	if err != nil {
		return fmt.Errorf("broker ingress %s not accepting events: %w (last: %s)", url, err, last)
	}
	return nil
}

func (s *Stack) checkProcesses() error {
	for _, p := range s.procs {
		if p.Exited() {
			return fmt.Errorf("%s exited: %v%s", p.name, p.State(), tail(p.log, 2000))
		}
	}
	return nil
}
