package metrics

import (
	"sort"
	"sync"
	"time"
)

// OtherRepository is the repository label value of everything over the cap.
// GitHub repositories are always owner/name, so it cannot collide.
const OtherRepository = "other"

// maxRefusedTracked bounds the memory spent remembering which repositories
// were refused (only used to count each one once).
const maxRefusedTracked = 10000

// repoCap bounds the distinct repository label values. Admission is first
// come and sticky: once a repository has its own series it keeps them, so a
// counter never moves from one series to another — until the repository has
// had no live Event and no object for the idle time (see sweep): then its
// slot is given back and its series end (they are never folded into
// "other").
type repoCap struct {
	mu       sync.Mutex
	max      int
	admitted map[string]struct{}
	refused  map[string]struct{}
	dropped  uint64
	// lastAlive is when each admitted repository was last seen with a
	// live Event or an object.
	lastAlive map[string]time.Time
	released  uint64
}

func newRepoCap(maxRepos int) *repoCap {
	return &repoCap{max: maxRepos, admitted: map[string]struct{}{}, refused: map[string]struct{}{},
		lastAlive: map[string]time.Time{}}
}

// seed admits repositories that already have series (from the checkpoint),
// even beyond the cap: persisted counters cannot be folded after the fact.
func (c *repoCap) seed(repo string) {
	if repo == "" || repo == OtherRepository {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.admitted[repo] = struct{}{}
}

// admit returns the label value to use for repo.
func (c *repoCap) admit(repo string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.admitted[repo]; ok {
		return repo
	}
	if len(c.admitted) < c.max {
		c.admitted[repo] = struct{}{}
		return repo
	}
	if _, ok := c.refused[repo]; !ok {
		c.dropped++
		if len(c.refused) < maxRefusedTracked {
			c.refused[repo] = struct{}{}
		}
	}
	return OtherRepository
}

// droppedTotal is the number of distinct repositories refused so far.
func (c *repoCap) droppedTotal() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// sweep gives back the slots of admitted repositories not in alive for
// longer than idle, and returns them (sorted). A repository's idle clock
// starts when sweep first sees it admitted, so one admitted from a
// checkpoint gets the whole idle time after a restart.
func (c *repoCap) sweep(alive map[string]bool, now time.Time, idle time.Duration) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var freed []string
	for repo := range c.admitted {
		last, known := c.lastAlive[repo]
		switch {
		case alive[repo] || !known:
			c.lastAlive[repo] = now
		case now.Sub(last) > idle:
			delete(c.admitted, repo)
			delete(c.lastAlive, repo)
			c.released++
			freed = append(freed, repo)
		}
	}
	sort.Strings(freed)
	return freed
}

// releasedTotal is the number of slots given back so far.
func (c *repoCap) releasedTotal() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released
}
