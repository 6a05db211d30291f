package eventingstack

import (
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// Delivery is the delivery spec of a Broker file (config/eventing/
// broker.yaml), for checking what Knative does against what the file says.
type Delivery struct {
	Retry         int
	BackoffPolicy string // "exponential" (Knative's default) or "linear"
	BackoffDelay  time.Duration
	// DeadLetterSink is the name the deadLetterSink ref points at.
	DeadLetterSink string
}

// ReadDelivery reads the delivery spec of the Broker in path.
func ReadDelivery(path string) (Delivery, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Delivery{}, err
	}
	var br struct {
		Spec struct {
			Delivery struct {
				Retry          int    `json:"retry"`
				BackoffPolicy  string `json:"backoffPolicy"`
				BackoffDelay   string `json:"backoffDelay"`
				DeadLetterSink struct {
					Ref struct {
						Name string `json:"name"`
					} `json:"ref"`
				} `json:"deadLetterSink"`
			} `json:"delivery"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &br); err != nil {
		return Delivery{}, fmt.Errorf("%s: %w", path, err)
	}
	d := br.Spec.Delivery
	// ISO 8601 durations of the form PT<seconds>S, as config/ writes them.
	var secs float64
	if _, err := fmt.Sscanf(d.BackoffDelay, "PT%gS", &secs); err != nil {
		return Delivery{}, fmt.Errorf("%s: backoffDelay %q: want PT<seconds>S", path, d.BackoffDelay)
	}
	policy := d.BackoffPolicy
	if policy == "" {
		policy = "exponential"
	}
	return Delivery{Retry: d.Retry, BackoffPolicy: policy,
		BackoffDelay: time.Duration(secs * float64(time.Second)), DeadLetterSink: d.DeadLetterSink.Ref.Name}, nil
}

// Delay is the wait before retry i (0-based), as knative.dev/eventing
// v0.43.0 pkg/kncloudevents/retries.go computes it (exponential: delay *
// 2^i; linear: delay * i; go-retryablehttp counts i from 0).
func (d Delivery) Delay(i int) time.Duration {
	if d.BackoffPolicy == "linear" {
		return d.BackoffDelay * time.Duration(i)
	}
	return d.BackoffDelay << i
}
