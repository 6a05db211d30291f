package metrics

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// Reconcile passes (pkg/reconcile) keep their figures in the cursor ConfigMaps
// they write with optimistic concurrency (labelled
// stablev1.LabelReconcileCursor), so the counts are exact across recorder
// replicas; this function watches those ConfigMaps and exports them. The
// informer is not part of readiness: an older deployment without the
// ConfigMap list/watch grant still serves every other metric.

// startReconcileInformer watches the cursor ConfigMaps of the namespace.
func (s *Service) startReconcileInformer(ctx context.Context) {
	cms := s.clients.ConfigMaps
	selector := stablev1.LabelReconcileCursor + "=true"
	inf := s.informer("reconcilecursors", &corev1.ConfigMap{},
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return cms.List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return cms.Watch(ctx, o)
		})
	s.mu.Lock()
	s.cursorStore = inf.GetStore()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		inf.RunWithContext(ctx)
	}()
}

// cursors are the cursor ConfigMaps a scrape reports, by scope.
func (s *Service) cursors() []*corev1.ConfigMap {
	s.mu.Lock()
	store := s.cursorStore
	s.mu.Unlock()
	if store == nil {
		return nil
	}
	var out []*corev1.ConfigMap
	for _, o := range store.List() {
		if cm, ok := o.(*corev1.ConfigMap); ok && cm.Data[stablev1.CursorScope] != "" {
			out = append(out, cm)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.ConfigMap) int {
		return strings.Compare(a.Data[stablev1.CursorScope], b.Data[stablev1.CursorScope])
	})
	return out
}

func cursorNumber(cm *corev1.ConfigMap, key string) (float64, bool) {
	v, ok := cm.Data[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseFloat(v, 64)
	return n, err == nil
}

// cursorSamples is one sample per cursor of key's value (0 when absent,
// for counters; skipped when absent and !zero, for gauges only known
// after a pass).
func (v *view) cursorSamples(key string, zero bool) []sample {
	var out []sample
	for _, cm := range v.cursors {
		n, ok := cursorNumber(cm, key)
		if !ok && !zero {
			continue
		}
		out = append(out, sample{labels: []string{cm.Namespace, cm.Data[stablev1.CursorScope]}, value: n})
	}
	return out
}

func (v *view) reconcilePasses() []sample {
	var out []sample
	for _, cm := range v.cursors {
		for _, r := range stablev1.ReconcileResults {
			n, _ := cursorNumber(cm, stablev1.CursorPassesPrefix+r)
			out = append(out, sample{labels: []string{cm.Namespace, cm.Data[stablev1.CursorScope], r}, value: n})
		}
	}
	return out
}

// reconcileErrors is one sample per cursor key "errors.<resource>.<reason>"
// whose resource and reason are known values (the label sets stay bounded
// whatever a ConfigMap holds). A series appears with its first error.
func (v *view) reconcileErrors() []sample {
	var out []sample
	for _, cm := range v.cursors {
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			if strings.HasPrefix(k, stablev1.CursorErrorsPrefix) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			resource, reason, ok := strings.Cut(strings.TrimPrefix(k, stablev1.CursorErrorsPrefix), ".")
			if !ok || !slices.Contains(stablev1.ReconcileErrorResources, resource) ||
				!slices.Contains(stablev1.ReconcileErrorReasons, reason) {
				continue
			}
			n, ok := cursorNumber(cm, k)
			if !ok {
				continue
			}
			out = append(out, sample{labels: []string{cm.Namespace, cm.Data[stablev1.CursorScope], resource, reason}, value: n})
		}
	}
	return out
}

// oldestUnrecoveredAge is how long the oldest failed delivery not yet
// recovered has waited (0 when none): what the alert watches.
func (v *view) oldestUnrecoveredAge() []sample {
	var out []sample
	for _, cm := range v.cursors {
		age := 0.0
		if t, err := time.Parse(time.RFC3339, cm.Data[stablev1.CursorOldestUnrecovered]); err == nil {
			age = max(v.now.Sub(t).Seconds(), 0)
		}
		out = append(out, sample{labels: []string{cm.Namespace, cm.Data[stablev1.CursorScope]}, value: age})
	}
	return out
}

func (v *view) lastPass() []sample {
	var out []sample
	for _, cm := range v.cursors {
		if t, err := time.Parse(time.RFC3339, cm.Data[stablev1.CursorLastPassAt]); err == nil {
			out = append(out, sample{labels: []string{cm.Namespace, cm.Data[stablev1.CursorScope]}, value: float64(t.Unix())})
		}
	}
	return out
}

// reconcileFamilies are the reconcile rows of the metric table.
func reconcileFamilies() []family {
	scope := []string{"namespace", "scope"}
	return []family{
		{
			name:     "gitpulse_reconcile_passes_total",
			help:     "Reconcile passes over a GitHubSource's repository or organisation (scope), by result (ok, partial, rate_limited, error, degraded).",
			kind:     kindCounter,
			labels:   []string{"namespace", "scope", "result"},
			generate: func(v *view) []sample { return v.reconcilePasses() },
		},
		{
			name:     "gitpulse_reconcile_errors_total",
			help:     "GitHub requests of reconcile passes that failed, by what they read (resource) and why (reason: not_found and forbidden are GitHub refusing the token or the item gone; server_error and network are GitHub's or the network's failures). Each cost one unit of work, retried with backoff.",
			kind:     kindCounter,
			labels:   []string{"namespace", "scope", "resource", "reason"},
			generate: func(v *view) []sample { return v.reconcileErrors() },
		},
		{
			name:     "gitpulse_reconcile_redeliveries_requested_total",
			help:     "Redeliveries of failed webhook deliveries reconcile passes asked GitHub for.",
			kind:     kindCounter,
			labels:   scope,
			generate: func(v *view) []sample { return v.cursorSamples(stablev1.CursorRedeliveries, true) },
		},
		{
			name:     "gitpulse_reconcile_objects_reconciled_total",
			help:     "PullRequest, Branch and GitHubDeployment objects reconcile passes changed from the GitHub API (backfill and drift repair).",
			kind:     kindCounter,
			labels:   scope,
			generate: func(v *view) []sample { return v.cursorSamples(stablev1.CursorReconciled, true) },
		},
		{
			name:     "gitpulse_reconcile_github_api_remaining",
			help:     "GitHub's remaining primary rate-limit budget (X-RateLimit-Remaining) at the last pass.",
			kind:     kindGauge,
			labels:   scope,
			generate: func(v *view) []sample { return v.cursorSamples(stablev1.CursorAPIRemaining, false) },
		},
		{
			name:     "gitpulse_reconcile_unrecovered_deliveries",
			help:     "Failed webhook deliveries not yet recovered (no successful attempt, no Event) at the last complete scan.",
			kind:     kindGauge,
			labels:   scope,
			generate: func(v *view) []sample { return v.cursorSamples(stablev1.CursorUnrecovered, true) },
		},
		{
			name:     "gitpulse_reconcile_oldest_unrecovered_delivery_age_seconds",
			help:     "Age of the oldest failed webhook delivery not yet recovered (0 when none).",
			kind:     kindGauge,
			labels:   scope,
			generate: func(v *view) []sample { return v.oldestUnrecoveredAge() },
		},
		{
			name:     "gitpulse_reconcile_last_pass_timestamp_seconds",
			help:     "Unix time the last reconcile pass over the scope started.",
			kind:     kindGauge,
			labels:   scope,
			generate: func(v *view) []sample { return v.lastPass() },
		},
	}
}
