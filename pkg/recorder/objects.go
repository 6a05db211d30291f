package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/lru"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// What the recorder knows about objects without asking the API server,
// so that a delivery costs two requests (the object write and the Event
// create) instead of a read first:
//
//   - the objects this replica wrote last, as the API server answered the
//     write (recentObjects). The next delivery about the same pull request
//     or branch starts from that object. If another replica wrote it since,
//     the update conflicts and the object is read live: a stale entry costs
//     requests, never a wrong write (optimistic concurrency, as
//     controllers use their caches).
//   - which objects live under a legacy name (legacyNames), from one list
//     at start-up. Without it every object not yet known would need a
//     second read (of its legacy name) before it could be created.
//
// Neither is an informer cache of the namespace on purpose: gitpulse keeps
// every pull request and branch ever recorded, and a replica that listed
// and held them all would pay for it at every cold start (a list of the
// whole namespace competing with the first deliveries) and in memory
// (100,000 objects are a few hundred MiB), for deliveries that mostly
// touch a few recently active objects.

// DefaultRecentObjects bounds recentObjects: objects are a few KiB
// (more for a branch with thousands of remembered deliveries).
const DefaultRecentObjects = 1000

// recentObjects remembers objects by kind and name. Entries are shared:
// never modified, always deep-copied before a change.
type recentObjects struct{ c *lru.Cache }

func newRecentObjects(size int) recentObjects { return recentObjects{lru.New(size)} }

type objectKey struct{ kind, name string }

func (o recentObjects) get(kind, name string) (any, bool) { return o.c.Get(objectKey{kind, name}) }
func (o recentObjects) add(kind, name string, obj any)    { o.c.Add(objectKey{kind, name}, obj) }
func (o recentObjects) forget(kind, name string)          { o.c.Remove(objectKey{kind, name}) }

// legacyNames is which objects are under a name other than the one their
// identity hashes to: legacy names (older gitpulse versions) and anything
// hand-made. Until ScanLegacyNames has finished, nothing is known and every
// object that is not among recentObjects is looked up under both names.
type legacyNames struct {
	mu    sync.RWMutex
	known bool
	names map[objectKey]bool
}

// absent reports whether it is known that no object is named name.
func (l *legacyNames) absent(kind, name string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.known && !l.names[objectKey{kind, name}]
}

// ScanLegacyNames lists the namespace's PullRequests and Branches once
// (their metadata, in pages) and remembers which are not under the name
// their identity hashes to. Until it returns nil the recorder looks every
// new object up under its legacy name too; the function starts it in the
// background at start-up. Legacy names are never given to new objects, so
// the list cannot go out of date — unless a replica of a gitpulse version
// from before hashed names still runs alongside (stop those before
// starting this version). It retries transient failures for a minute.
func (r *Recorder) ScanLegacyNames(ctx context.Context) error {
	found := map[objectKey]bool{}
	scan := func(kind, resource string, expected func(m metav1.ObjectMeta) string) error {
		cont := ""
		for {
			var list metav1.PartialObjectMetadataList
			err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Steps: 8, Duration: 500 * time.Millisecond, Factor: 2, Cap: 15 * time.Second},
				func(ctx context.Context) (bool, error) {
					req := r.opts.Gitpulse.StableV1().RESTClient().Get().Namespace(r.opts.Namespace).Resource(resource).
						SetHeader("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").
						Param("limit", "500")
					if cont != "" {
						req = req.Param("continue", cont)
					}
					body, err := req.DoRaw(ctx)
					if err != nil {
						return false, retriableList(err)
					}
					return true, json.Unmarshal(body, &list)
				})
			if err != nil {
				return fmt.Errorf("listing %s: %w", resource, err)
			}
			for _, item := range list.Items {
				if item.Name != expected(item.ObjectMeta) {
					found[objectKey{kind, item.Name}] = true
				}
			}
			if cont = list.Continue; cont == "" {
				return nil
			}
		}
	}
	err := scan("PullRequest", "pullrequests", func(m metav1.ObjectMeta) string {
		n, err := strconv.ParseInt(m.Labels[stablev1.LabelPullRequestNumber], 10, 64)
		if err != nil || m.Annotations[stablev1.AnnotationRepository] == "" {
			return ""
		}
		return naming.PullRequestName(m.Annotations[stablev1.AnnotationRepository], n)
	})
	if err == nil {
		err = scan("Branch", "branches", func(m metav1.ObjectMeta) string {
			repo, branch := m.Annotations[stablev1.AnnotationRepository], m.Annotations[stablev1.AnnotationBranch]
			if repo == "" || branch == "" {
				return ""
			}
			return naming.BranchName(repo, branch)
		})
	}
	if err != nil {
		return err
	}
	r.legacy.mu.Lock()
	r.legacy.known, r.legacy.names = true, found
	r.legacy.mu.Unlock()
	r.log.Info("objects under legacy names", "count", len(found))
	return nil
}

// retriableList: a list that failed for a reason worth retrying returns
// nil (keep trying); anything else (RBAC, a missing resource) ends the
// scan.
func retriableList(err error) error {
	var netErr net.Error
	if apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || errors.As(err, &netErr) {
		return nil
	}
	return err
}
