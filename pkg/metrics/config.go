package metrics

import (
	"time"
)

// CheckpointName is the ConfigMap holding the exactness checkpoint; the
// function's Role grants update on this one name only.
const CheckpointName = "gitpulse-metrics-checkpoint"

// Defaults.
const (
	// DefaultMemoryLimit is the soft memory limit without GOMEMLIMIT or a
	// container limit (pkg/memlimit): the process's working set is a few
	// tens of MiB whatever the number of Events (see README, Memory).
	DefaultMemoryLimit = 48 << 20
	// DefaultGCPercent is the collector's GOGC unless the environment sets
	// one: the function's heap is mostly what it keeps (the records of
	// every object, the counts, the kept text), which the default 100 lets
	// the heap double; once started it allocates little, so collecting
	// sooner costs it little CPU (docs/benchmarks.md, issue 23).
	DefaultGCPercent          = 50
	DefaultMaxRepositories    = 500
	DefaultCheckpointInterval = 5 * time.Second
	// DefaultRepositoryIdleTimeout: a repository with no live Event and no
	// object for a day gives back its label slot.
	DefaultRepositoryIdleTimeout = 24 * time.Hour
)

// Config is what a Service counts and how; the metrics function fills it
// from its environment (functions/metrics).
type Config struct {
	// Namespace is the one namespace watched (Events, PullRequests,
	// Branches, GitHubDeployments, reconcile cursors) and where the
	// checkpoint lives.
	Namespace string
	// MaxRepositories caps the distinct repository label values; the rest
	// are folded into repository="other".
	MaxRepositories int
	// CheckpointInterval is how often counts are persisted.
	CheckpointInterval time.Duration
	// RepositoryIdleTimeout: a repository with no live Event and no object
	// for this long gives back its slot under MaxRepositories, and its
	// series end. 0 keeps slots for ever.
	RepositoryIdleTimeout time.Duration
}
