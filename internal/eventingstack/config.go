package eventingstack

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/liatrio/gitpulse/internal/controlplane"
)

// The files of knative.dev/eventing v0.43.0's config/ that are applied, as
// `make eventing` copies them to bin/eventing/config/ from the module the
// binaries were built from. Deployments, RBAC and HPAs are left out: the
// processes run here with admin credentials.
var (
	namespaceFiles = []string{"core/100-namespace.yaml"}
	crdDirs        = []string{"core/resources", "channels/in-memory-channel/resources"}
	configFiles    = []string{
		"core/configmaps/default-broker-channel.yaml", "core/configmaps/default-broker.yaml",
		"core/configmaps/default-channel.yaml", "core/configmaps/default-pingsource.yaml",
		"core/configmaps/features.yaml", "core/configmaps/kreference-mapping.yaml",
		"core/configmaps/leader-election.yaml", "core/configmaps/logging.yaml",
		"core/configmaps/observability.yaml", "core/configmaps/sugar.yaml", "core/configmaps/tracing.yaml",
		"channels/in-memory-channel/configmaps/event-dispatcher.yaml",
		"core/webhooks/secret.yaml", "channels/in-memory-channel/webhooks/secret.yaml",
	}
	// The Services whose Endpoints the controllers read for readiness, and
	// the dispatcher Deployment whose Available condition the in-memory
	// channel controller propagates (pkg/reconciler/inmemorychannel/
	// controller/inmemorychannel.go ReconcileKind; pkg/reconciler/broker/
	// broker.go reads broker-filter's and broker-ingress's Endpoints).
	placeholderFiles = []string{
		"brokers/mt-channel-broker/deployments/broker-ingress.yaml",
		"brokers/mt-channel-broker/deployments/broker-filter.yaml",
		"channels/in-memory-channel/deployments/dispatcher-service.yaml",
		"channels/in-memory-channel/deployments/dispatcher.yaml",
	}
	webhookFiles = []string{
		"core/webhooks/config-validation.yaml", "core/webhooks/defaulting.yaml",
		"core/webhooks/resource-validation.yaml", "core/webhooks/sinkbindings.yaml",
		"channels/in-memory-channel/webhooks/defaulting.yaml",
		"channels/in-memory-channel/webhooks/resource-validation.yaml",
	}
)

// placeholderIPs are documentation addresses (RFC 5737 TEST-NET-1) for the
// Endpoints nobody may send to: the API server refuses loopback ones.
var placeholderIPs = map[string]string{
	"broker-ingress": "192.0.2.1",
	"broker-filter":  "192.0.2.2",
	"imc-dispatcher": "192.0.2.3",
}

func (s *Stack) configDir() string { return filepath.Join(s.opts.BinDir, "config") }

// webhookPort is the port of the process behind a webhook Service.
func (s *Stack) webhookPort(service string) (int64, bool) {
	switch service {
	case "eventing-webhook":
		return int64(s.ports["webhook"]), true
	case "inmemorychannel-webhook":
		return int64(s.ports["imc-webhook"]), true
	}
	return 0, false
}

func (s *Stack) applyConfig(ctx context.Context) error {
	dir := s.configDir()
	create := func(objs []*unstructured.Unstructured) error {
		for _, o := range objs {
			if _, err := s.apply.create(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}
	objs, err := readObjects(dir, namespaceFiles...)
	if err != nil {
		return err
	}
	if err := create(objs); err != nil {
		return err
	}

	// CRDs; the conversion webhooks' Service port becomes the webhook's.
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, d := range crdDirs {
		files, _ := filepath.Glob(filepath.Join(dir, d, "*.yaml"))
		for i := range files {
			files[i], _ = filepath.Rel(dir, files[i])
		}
		objs, err := readObjects(dir, files...)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if svc, ok, _ := unstructured.NestedMap(o.Object, "spec", "conversion", "webhook", "clientConfig", "service"); ok {
				if port, ok := s.webhookPort(fmt.Sprint(svc["name"])); ok {
					unstructured.SetNestedField(o.Object, port, "spec", "conversion", "webhook", "clientConfig", "service", "port")
				}
			}
			crd, err := toCRD(o)
			if err != nil {
				return err
			}
			crds = append(crds, crd)
		}
	}
	crds = append(crds, serviceStandIn())
	if err := controlplane.InstallCRDs(ctx, s.opts.Config, crds); err != nil {
		return err
	}
	if err := s.apply.refresh(); err != nil {
		return err
	}

	objs, err = readObjects(dir, configFiles...)
	if err != nil {
		return err
	}
	for _, o := range objs {
		switch o.GetName() {
		case "config-observability":
			// Otherwise every process serves Prometheus metrics on :9090
			// or :9092 and they collide (knative.dev/pkg metrics).
			unstructured.SetNestedField(o.Object, "none", "data", "metrics.backend-destination")
		case "config-logging":
			zc, _, _ := unstructured.NestedString(o.Object, "data", "zap-logger-config")
			zc = strings.Replace(zc, `"level": "info"`, fmt.Sprintf("%q: %q", "level", s.opts.LogLevel), 1)
			unstructured.SetNestedField(o.Object, zc, "data", "zap-logger-config")
		}
	}
	if err := create(objs); err != nil {
		return err
	}

	// The webhooks' Services: ExternalName localhost, so the API server
	// calls https://localhost:<port from the webhook configuration>.
	for _, name := range []string{"eventing-webhook", "inmemorychannel-webhook"} {
		svc := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": name, "namespace": SystemNamespace},
			"spec":     map[string]any{"type": "ExternalName", "externalName": "localhost"},
		}}
		if _, err := s.apply.create(ctx, svc); err != nil {
			return err
		}
	}

	objs, err = readObjects(dir, placeholderFiles...)
	if err != nil {
		return err
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Service":
			if _, err := s.apply.create(ctx, o); err != nil {
				return err
			}
			if err := s.createEndpoints(ctx, o); err != nil {
				return err
			}
		case "Deployment":
			if o.GetName() != "imc-dispatcher" {
				continue
			}
			d, err := s.apply.create(ctx, o)
			if err != nil {
				return err
			}
			if err := s.markAvailable(ctx, d); err != nil {
				return err
			}
		}
	}

	objs, err = readObjects(dir, webhookFiles...)
	if err != nil {
		return err
	}
	for _, o := range objs {
		hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
		for _, h := range hooks {
			hm := h.(map[string]any)
			if svc, ok, _ := unstructured.NestedMap(hm, "clientConfig", "service"); ok {
				if port, ok := s.webhookPort(fmt.Sprint(svc["name"])); ok {
					unstructured.SetNestedField(hm, port, "clientConfig", "service", "port")
				}
			}
		}
		unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
	}
	return create(objs)
}

// createEndpoints gives a selector Service (no endpoints controller runs
// here) one ready placeholder address with the Service's target ports.
func (s *Stack) createEndpoints(ctx context.Context, svc *unstructured.Unstructured) error {
	ip, ok := placeholderIPs[svc.GetName()]
	if !ok {
		return fmt.Errorf("no placeholder address for Service %s", svc.GetName())
	}
	svcPorts, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	var ports []any
	for _, p := range svcPorts {
		pm := p.(map[string]any)
		port := pm["port"]
		if tp, ok := pm["targetPort"].(int64); ok {
			port = tp
		}
		ep := map[string]any{"port": port, "protocol": "TCP"}
		if n, ok := pm["name"]; ok {
			ep["name"] = n
		}
		ports = append(ports, ep)
	}
	ep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Endpoints",
		"metadata": map[string]any{"name": svc.GetName(), "namespace": SystemNamespace},
		"subsets": []any{map[string]any{
			"addresses": []any{map[string]any{"ip": ip}},
			"ports":     ports,
		}},
	}}
	_, err := s.apply.create(ctx, ep)
	return err
}

// markAvailable writes the status a Deployment controller would write once
// its pod is ready.
func (s *Stack) markAvailable(ctx context.Context, d *unstructured.Unstructured) error {
	now := time.Now().UTC().Format(time.RFC3339)
	d.Object["status"] = map[string]any{
		"observedGeneration": d.GetGeneration(),
		"replicas":           int64(1), "updatedReplicas": int64(1),
		"readyReplicas": int64(1), "availableReplicas": int64(1),
		"conditions": []any{map[string]any{
			"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
			"lastUpdateTime": now, "lastTransitionTime": now,
		}},
	}
	return s.apply.updateStatus(ctx, d)
}
