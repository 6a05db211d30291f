package localrun

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/ghadapter"
)

// Where a webhook enters. With Options.Eventing it is the real GitHubSource
// receive adapter (internal/ghadapter), as in a cluster: K_SINK is the
// Broker's status.address.url (what the GitHubSource controller resolves
// its sink to), reached through the eventing processes' proxy; it checks
// the SHA-1 X-Hub-Signature only, and answers as the adapter does (empty
// 400 for what it cannot parse). Without eventing, gitpulse's own intake
// (internal/intake) sends to the recorder directly and checks
// X-Hub-Signature-256.

// defaultOwnerAndRepository is GITHUB_OWNER_REPO when Options leave it
// empty: the adapter needs one (a GitHubSource's spec.ownerAndRepository,
// an owner/repo or an organisation), and only the CloudEvent source shows
// it; the recorder reads the repository from the payload.
const defaultOwnerAndRepository = "gitpulse-local"

// adapterBinDir is where the receive adapter and its GitHubSource CRD are.
func (s *Stack) adapterBinDir() (string, error) {
	if s.opts.EventingGitHubBinDir != "" {
		return s.opts.EventingGitHubBinDir, nil
	}
	return ghadapter.BinDir()
}

// installGitHubSourceCRD installs eventing-github's own GitHubSource CRD
// (copied by `make eventing-github` from the module's config/), so that
// reconcile passes find the GitHubSources a user applies.
func (s *Stack) installGitHubSourceCRD(ctx context.Context) error {
	dir, err := s.adapterBinDir()
	if err != nil {
		return err
	}
	crds, err := ghadapter.ReadCRDs(dir)
	if err != nil {
		return err
	}
	return controlplane.InstallCRDs(ctx, s.ControlPlane.Config(), crds)
}

func (s *Stack) startAdapter(ctx context.Context) error {
	dir, err := s.adapterBinDir()
	if err != nil {
		return err
	}
	sink, err := s.brokerAddress(ctx)
	if err != nil {
		return err
	}
	s.adapter, err = ghadapter.Start(ctx, ghadapter.Options{
		BinDir: dir, Sink: sink, Secret: s.opts.Secret,
		OwnerAndRepository: cmp.Or(s.opts.OwnerAndRepository, defaultOwnerAndRepository),
		Namespace:          s.opts.Namespace, Name: "gitpulse", Port: s.opts.IntakePort,
		Kubeconfig: s.kubeconfig, Proxy: s.ev.events.Proxy().URL(),
		Log: s.opts.Log, LogPath: filepath.Join(s.opts.Dir, "github-receive-adapter.log"),
	})
	if err != nil {
		return fmt.Errorf("GitHubSource receive adapter: %w", err)
	}
	// The adapter serves every path; GitHub posts to the path it is given.
	s.intakeURL = "http://127.0.0.1:" + strconv.Itoa(s.adapter.Port()) + "/webhook"
	return nil
}

// brokerAddress is the Broker's status.address.url, e.g.
// http://broker-ingress.knative-eventing.svc.cluster.local/gitpulse/default.
func (s *Stack) brokerAddress(ctx context.Context) (string, error) {
	dyn, err := dynamic.NewForConfig(s.ControlPlane.Config())
	if err != nil {
		return "", err
	}
	gvr := schema.GroupVersionResource{Group: "eventing.knative.dev", Version: "v1", Resource: "brokers"}
	b, err := dyn.Resource(gvr).Namespace(s.ev.routing.Namespace).Get(ctx, s.ev.routing.Broker, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	url, _, _ := unstructured.NestedString(b.Object, "status", "address", "url")
	if url == "" {
		return "", fmt.Errorf("broker %s/%s has no status.address.url", s.ev.routing.Namespace, s.ev.routing.Broker)
	}
	return url, nil
}

func (s *Stack) stopAdapter() {
	if s.adapter != nil {
		s.adapter.Stop()
	}
}

// AdapterPid is the GitHubSource receive adapter's process id (0 without
// eventing), for CPU measurements.
func (s *Stack) AdapterPid() int {
	if s.adapter == nil {
		return 0
	}
	return s.adapter.Pid()
}
