package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// The cursor of one scope (a repository, or an organisation) lives in a
// ConfigMap labelled stablev1.LabelReconcileCursor, so that it survives
// restarts and is shared by every replica. Every change is a
// read-modify-update with the ConfigMap's resourceVersion (optimistic
// concurrency): when two passes overlap, one update conflicts, is re-read
// and re-decided, so a redelivery is claimed by exactly one pass and counts
// are never lost. The keys are plain strings so `kubectl get cm -o yaml`
// reads as the state it is; the metrics function exports some of them.
const (
	KeyScope             = stablev1.CursorScope
	KeyAPIURL            = "githubAPIURL"
	KeyLowWater          = "deliveries.lowWater"
	KeyRequested         = "deliveries.requested"
	KeyUnrecovered       = stablev1.CursorUnrecovered
	KeyOldestUnrecovered = stablev1.CursorOldestUnrecovered
	KeyPullsSince        = "pullRequests.since"
	KeyDeploymentsSince  = "deployments.since"
	KeyPullsScan         = "pullRequests.scan"
	KeyDeploymentsScan   = "deployments.scan"
	KeyFullResyncAt      = "fullResyncAt"
	KeyNotBefore         = "notBefore"
	KeyLastPassAt        = stablev1.CursorLastPassAt
	KeyLastResult        = "lastResult"
	KeyRedeliveries      = stablev1.CursorRedeliveries
	KeyReconciled        = stablev1.CursorReconciled
	KeyAPIRemaining      = stablev1.CursorAPIRemaining
	KeyAPILimit          = "api.limit"
	// KeyPassesPrefix + result counts the passes that ended so.
	KeyPassesPrefix = stablev1.CursorPassesPrefix
	// KeyErrorsPrefix + "<resource>.<reason>" counts GitHub's failed
	// answers (classify.go, failures.go).
	KeyErrorsPrefix = stablev1.CursorErrorsPrefix
	// KeyFailures is the failed units of work awaiting retry (JSON,
	// failures.go), bounded by Options.MaxFailures.
	KeyFailures = "failures"
)

// Pass results, as counted under KeyPassesPrefix.
const (
	ResultOK          = "ok"
	ResultPartial     = "partial"
	ResultRateLimited = "rate_limited"
	ResultError       = "error"
	// ResultDegraded: the pass did every unit of work it could, but some
	// failed (or still back off from an earlier failure): they are in
	// KeyFailures, retried by later passes.
	ResultDegraded = "degraded"
)

// Results are every pass result (stablev1.ReconcileResults).
var Results = stablev1.ReconcileResults

// cursorName is the ConfigMap of a scope at an API URL.
func cursorName(apiURL, scope string) string {
	sum := sha256.Sum256([]byte(apiURL + "\x00" + scope))
	return "gitpulse-reconcile-" + hex.EncodeToString(sum[:8])
}

// cursor is a scope's ConfigMap, decoded where needed.
type cursor struct{ cm *corev1.ConfigMap }

func (c cursor) get(k string) string { return c.cm.Data[k] }

func (c cursor) set(k, v string) {
	if c.cm.Data == nil {
		c.cm.Data = map[string]string{}
	}
	if v == "" {
		delete(c.cm.Data, k)
		return
	}
	c.cm.Data[k] = v
}

func (c cursor) time(k string) time.Time {
	t, _ := time.Parse(time.RFC3339, c.get(k))
	return t
}

func (c cursor) setTime(k string, t time.Time) {
	if t.IsZero() {
		c.set(k, "")
		return
	}
	c.set(k, t.UTC().Format(time.RFC3339))
}

func (c cursor) int(k string) int64 {
	n, _ := strconv.ParseInt(c.get(k), 10, 64)
	return n
}

func (c cursor) add(k string, n int64) {
	if n != 0 {
		c.set(k, strconv.FormatInt(c.int(k)+n, 10))
	}
}

// requested is when each GUID's redelivery was last requested.
func (c cursor) requested() map[string]time.Time {
	out := map[string]time.Time{}
	_ = json.Unmarshal([]byte(c.get(KeyRequested)), &out)
	return out
}

func (c cursor) setRequested(m map[string]time.Time) {
	if len(m) == 0 {
		c.set(KeyRequested, "")
		return
	}
	b, _ := json.Marshal(m)
	c.set(KeyRequested, string(b))
}

// store reads and updates cursors in one namespace.
type store struct {
	kube      kubernetes.Interface
	namespace string
}

// ownedBy makes src's GitHubSource an owner of the cursor, so that the
// cluster's garbage collector deletes the cursor (and its figures, and so
// any alert on them) with the last GitHubSource of its scope. It reports
// whether it added the reference. Not blockOwnerDeletion: that would need
// update rights on the GitHubSource's finalizers.
func ownedBy(cm *corev1.ConfigMap, src Source) bool {
	if src.UID == "" {
		return false
	}
	for _, o := range cm.OwnerReferences {
		if o.UID == src.UID {
			return false
		}
	}
	cm.OwnerReferences = append(cm.OwnerReferences, metav1.OwnerReference{
		APIVersion: GitHubSources.GroupVersion().String(), Kind: "GitHubSource", Name: src.Name, UID: src.UID})
	return true
}

// load returns the scope's cursor, creating it empty on first use.
func (s store) load(ctx context.Context, src Source) (cursor, error) {
	apiURL, scope := src.APIURL, src.Scope()
	name := cursorName(apiURL, scope)
	cms := s.kube.CoreV1().ConfigMaps(s.namespace)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: s.namespace,
			Labels: map[string]string{stablev1.LabelReconcileCursor: "true", "app.kubernetes.io/part-of": "gitpulse"},
		}, Data: map[string]string{KeyScope: scope, KeyAPIURL: apiURL}}
		ownedBy(cm, src)
		cm, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // another pass created it first
			cm, err = cms.Get(ctx, name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return cursor{}, fmt.Errorf("reading reconcile cursor %s/%s: %w", s.namespace, name, err)
	}
	return cursor{cm: cm}, nil
}

// update applies change to the newest cursor and writes it with its
// resourceVersion, re-reading and re-applying on conflict. change decides
// from what it is given (never from an older copy), and reports whether
// there is anything to write. It returns the cursor as written.
func (s store) update(ctx context.Context, src Source, change func(cursor) bool) (cursor, error) {
	var out cursor
	err := retry.RetryOnConflict(conflictBackoff, func() error {
		cur, err := s.load(ctx, src)
		if err != nil {
			return err
		}
		next := cursor{cm: cur.cm.DeepCopy()}
		changed := change(next)
		if ownedBy(next.cm, src) {
			changed = true
		}
		if !changed {
			out = cur
			return nil
		}
		cm, err := s.kube.CoreV1().ConfigMaps(s.namespace).Update(ctx, next.cm, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		out = cursor{cm: cm}
		return nil
	})
	if err != nil {
		return cursor{}, fmt.Errorf("writing reconcile cursor of %s: %w", src.Scope(), err)
	}
	return out, nil
}

// conflictBackoff paces re-reads of a cursor another pass updated; passes
// from every replica converge on one ConfigMap per scope.
var conflictBackoff = wait.Backoff{Steps: 20, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: time.Second}
