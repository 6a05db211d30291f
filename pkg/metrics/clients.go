package metrics

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/gentype"
	"k8s.io/client-go/rest"

	stablev1client "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/typed/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// Clients are the API clients a Service reads and writes through, each for
// its namespace. NewClients builds the function's; client-go's typed
// clients have the same methods (kube.CoreV1().ConfigMaps(ns), ...), so a
// test may pass those or their fakes.
type Clients struct {
	// ConfigMaps: the checkpoint (get, create, update) and the reconcile
	// cursors (list, watch).
	ConfigMaps ConfigMapClient
	// Events: the recorder's Events (list, watch).
	Events EventClient
	// Gitpulse: the objects (list, watch).
	Gitpulse stablev1client.StableV1Interface

	// ListEvents and ListGitpulse, when set, are what the Events and the
	// objects are listed through (their watches stay on Events and
	// Gitpulse): NewClients makes them speak HTTP/1.1, see there.
	ListEvents   EventClient
	ListGitpulse stablev1client.StableV1Interface
}

// listEvents is the client the Events are listed through.
func (c Clients) listEvents() EventClient {
	if c.ListEvents != nil {
		return c.ListEvents
	}
	return c.Events
}

// listGitpulse is the client the objects are listed through.
func (c Clients) listGitpulse() stablev1client.StableV1Interface {
	if c.ListGitpulse != nil {
		return c.ListGitpulse
	}
	return c.Gitpulse
}

// ConfigMapClient is what the Service needs of its namespace's ConfigMaps.
type ConfigMapClient interface {
	eventcount.ConfigMapClient
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.ConfigMapList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// EventClient is what the Service needs of its namespace's Events.
type EventClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.EventList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// NewClients builds the metrics function's clients for namespace from cfg:
// ConfigMaps and Events in protobuf (smaller, and far cheaper to decode
// than JSON, for 100k Events; the Events' list pages decoded by hand,
// eventpage.go), the objects in JSON (custom resources have no protobuf).
//
// The core client is client-go's generic typed client (gentype, as the
// generated CoreV1 client is) over a scheme of core/v1 alone: the generated
// clientset's package registers every built-in API group's types at init
// (k8s.io/client-go/kubernetes/scheme), which cost the function ~11 MiB of
// resident memory for kinds it never reads (docs/benchmarks.md).
//
// The lists go over HTTP/1.1 (TLS's ALPN offers only it), the rest over
// HTTP/2 as client-go sets it up. The first lists are four long answers at
// once (100k objects and 100k Events at an organisation's scale); over
// HTTP/2 they share one connection, whose frames one goroutine on each
// side writes and reads, and over HTTP/1.1 each has a connection of its
// own. Measured at 100k objects (docs/benchmarks.md, eleventh round): the
// first complete /metrics 7.0-7.3 s against 7.4-7.7 s, the API server's
// CPU to it 6.8-7.0 s against 7.4-7.8. The watches stay on HTTP/2, whose
// pings (client-go's 30 s read-idle health check) find a connection that
// died silently, where HTTP/1.1 has only TCP's keep-alive.
func NewClients(cfg *rest.Config, namespace string) (Clients, error) {
	overHTTP1 := rest.CopyConfig(cfg)
	overHTTP1.NextProtos = []string{"http/1.1"}
	c, _, err := newClients(cfg, namespace)
	if err != nil {
		return Clients{}, err
	}
	lists, core, err := newClients(overHTTP1, namespace)
	if err != nil {
		return Clients{}, err
	}
	c.ListEvents = eventLister{rc: core, ns: namespace, watcher: lists.Events, pages: &pageBuffer{}}
	c.ListGitpulse = lists.Gitpulse
	return c, nil
}

// newClients builds the clients for namespace from cfg, and returns the
// core/v1 REST client under them.
func newClients(cfg *rest.Config, namespace string) (Clients, rest.Interface, error) {
	core := rest.CopyConfig(cfg)
	core.GroupVersion = &corev1.SchemeGroupVersion
	core.APIPath = "/api"
	core.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(coreScheme, coreCodecs).WithoutConversion()
	if core.UserAgent == "" {
		core.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(core)
	if err != nil {
		return Clients{}, nil, fmt.Errorf("building the core API client: %w", err)
	}
	gitpulse, err := stablev1client.NewForConfig(cfg)
	if err != nil {
		return Clients{}, nil, fmt.Errorf("building the gitpulse API client: %w", err)
	}
	return Clients{
		ConfigMaps: gentype.NewClientWithList("configmaps", rc, coreParameterCodec, namespace,
			func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
			func() *corev1.ConfigMapList { return &corev1.ConfigMapList{} },
			gentype.PrefersProtobuf[*corev1.ConfigMap]()),
		Events: gentype.NewClientWithList("events", rc, coreParameterCodec, namespace,
			func() *corev1.Event { return &corev1.Event{} },
			func() *corev1.EventList { return &corev1.EventList{} },
			gentype.PrefersProtobuf[*corev1.Event]()),
		Gitpulse: gitpulse,
	}, rc, nil
}

// The scheme of the core client: core/v1 and the options and Status of
// meta/v1 (as k8s.io/client-go/kubernetes/scheme registers them, for one
// group).
var (
	coreScheme         = runtime.NewScheme()
	coreCodecs         = serializer.NewCodecFactory(coreScheme)
	coreParameterCodec = runtime.NewParameterCodec(coreScheme)
)

func init() {
	metav1.AddToGroupVersion(coreScheme, schema.GroupVersion{Version: "v1"})
	if err := corev1.AddToScheme(coreScheme); err != nil {
		panic(err)
	}
}
