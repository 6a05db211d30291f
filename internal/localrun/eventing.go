package localrun

import (
	"context"
	"os"
	"path/filepath"

	"github.com/liatrio/gitpulse/internal/eventingstack"
)

// The real Knative Broker between the GitHubSource receive adapter
// (adapter.go) and the recorder (with Options.Eventing): the Broker and its
// dead-letter sink from
// config/eventing/, one Trigger per subscription of the root func.yaml,
// as `kn func deploy` makes them, subscriber = the local recorder. See
// package eventingstack.

// eventingParts is the Stack's eventing state (nil fields without it).
type eventingParts struct {
	events     *eventingstack.Stack
	routing    *eventingstack.Routing
	deadLetter *eventingstack.DeadLetter
	dlLog      *os.File
}

func (s *Stack) startEventing(ctx context.Context) error {
	var err error
	s.ev.dlLog, err = os.OpenFile(filepath.Join(s.opts.Dir, "dead-letter.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if s.ev.deadLetter, err = eventingstack.StartDeadLetter(0, s.ev.dlLog); err != nil {
		return err
	}
	s.ev.events, err = eventingstack.Start(ctx, eventingstack.Options{
		BinDir: s.opts.EventingBinDir, Config: s.ControlPlane.Config(), Kubeconfig: s.kubeconfig,
		Dir: s.opts.Dir, Waiting: s.opts.EventingWaiting, FailIfBusy: s.opts.EventingFailIfBusy,
		IngressPort: s.opts.BrokerPort,
	})
	if err != nil {
		return err
	}
	s.ev.routing, err = s.ev.events.Deploy(ctx, eventingstack.DeployOptions{
		Namespace:      s.opts.Namespace,
		BrokerFile:     filepath.Join(s.opts.Root, "config", "eventing", "broker.yaml"),
		DeadLetterFile: filepath.Join(s.opts.Root, "config", "eventing", "dead-letter.yaml"),
		DeadLetterPort: s.ev.deadLetter.Port(),
		FuncYAML:       filepath.Join(s.opts.Root, "func.yaml"),
		FunctionPort:   s.opts.RecorderPort,
	})
	return err
}

func (s *Stack) stopEventing() {
	if s.ev.events != nil {
		s.ev.events.Stop()
	}
	if s.ev.deadLetter != nil {
		s.ev.deadLetter.Close()
	}
	if s.ev.dlLog != nil {
		s.ev.dlLog.Close()
	}
}

// intakeTarget is where the intake sends its CloudEvents. The intake runs
// only without eventing (the receive adapter sends to the Broker): the
// recorder directly.
func (s *Stack) intakeTarget() string {
	if s.ev.routing != nil {
		return s.ev.routing.BrokerURL
	}
	return s.RecorderURL()
}

// BrokerURL is the Broker's ingress ("" without eventing).
func (s *Stack) BrokerURL() string {
	if s.ev.routing == nil {
		return ""
	}
	return s.ev.routing.BrokerURL
}

// DeadLetter is the Broker's dead-letter sink (nil without eventing).
func (s *Stack) DeadLetter() *eventingstack.DeadLetter { return s.ev.deadLetter }

// Eventing is the running Knative Eventing (nil without it).
func (s *Stack) Eventing() *eventingstack.Stack { return s.ev.events }

// Routing is the Broker and Triggers made from config/ and func.yaml (nil
// without eventing).
func (s *Stack) Routing() *eventingstack.Routing { return s.ev.routing }

// Root is the gitpulse module root the stack runs from (config/, func.yaml).
func (s *Stack) Root() string { return s.opts.Root }
