package metrics

import "sync"

// OtherRepository is the repository label value of everything over the cap.
// GitHub repositories are always owner/name, so it cannot collide.
const OtherRepository = "other"

// maxRefusedTracked bounds the memory spent remembering which repositories
// were refused (only used to count each one once).
const maxRefusedTracked = 10000

// repoCap bounds the distinct repository label values. Admission is first
// come and sticky: once a repository has its own series it keeps them, so a
// counter never moves from one series to another.
type repoCap struct {
	mu       sync.Mutex
	max      int
	admitted map[string]struct{}
	refused  map[string]struct{}
	dropped  uint64
}

func newRepoCap(maxRepos int) *repoCap {
	return &repoCap{max: maxRepos, admitted: map[string]struct{}{}, refused: map[string]struct{}{}}
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
