package recorder

import (
	"sync"

	"k8s.io/utils/lru"
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
//   - nothing else: an object not among them is read by the name its
//     identity gives (one GET), and only when that finds nothing is it
//     looked up by its spec (a list by selectable fields, locate): after a
//     rename the object keeps the name it was created under.
//
// It is not an informer cache of the namespace on purpose: gitpulse keeps
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

// renamedRepositories are the repository ids this replica has seen under
// a name other than an object's (a rename or transfer it made an object
// follow). Changes about those repositories never create first: an object
// created before the rename is under another name, which only a lookup by
// its spec finds (locate). A replica that has not seen the rename yet
// (another replica followed it, or it restarted since) still creates first:
// docs/object-names.md says what that window costs.
type renamedRepositories struct {
	mu  sync.RWMutex
	ids map[int64]bool
}

func (s *renamedRepositories) add(id int64) {
	if id <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[int64]bool{}
	}
	s.ids[id] = true
}

func (s *renamedRepositories) has(id int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ids[id]
}
