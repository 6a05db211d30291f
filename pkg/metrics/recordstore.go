package metrics

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unique"

	"k8s.io/client-go/tools/cache"
)

// recordStore is one object kind's cache: the records (slim.go) of the
// objects by namespace and name. It is the store of a bare reflector, as the
// eventWatcher is the Events', rather than an informer's: an informer keeps
// each object three times over for what the aggregate needs once — its
// queue (whose slice keeps the first list's length after it drains), its
// indexer's map, and a "namespace/name" key string per object beside the
// record's name. At 100k objects those were 20 MB of a 65 MB live heap
// (docs/benchmarks.md, issue 23). Here the map's key is the interned
// namespace and a hash of the name (the record keeps no name), and a change
// is reported as it is stored.
//
// Whatever the reflector hands it — the records of a first list
// (streamedList, slimPage) or the full objects of a watch — is made a record
// (compactObject) before it is kept.
type recordStore struct {
	mu      sync.RWMutex
	records map[recordKey]any
	synced  atomic.Bool
	// changed is called after every change, outside the lock.
	changed func()
}

// recordKey is an object's identity in a recordStore: its interned
// namespace and its name's hash (slim.go).
type recordKey struct {
	namespace unique.Handle[string]
	name      nameHash
}

func newRecordStore(changed func()) *recordStore {
	return &recordStore{records: map[recordKey]any{}, changed: changed}
}

// storedRecord makes obj a record and returns it with its key.
func storedRecord(obj any) (any, recordKey, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	rec, err := compactObject(obj)
	if err != nil {
		return nil, recordKey{}, err
	}
	o, ok := rec.(interface{ object() *cachedObject })
	if !ok {
		return nil, recordKey{}, fmt.Errorf("not an object record: %T", rec)
	}
	m := o.object()
	return rec, recordKey{namespace: m.Namespace, name: m.Name}, nil
}

func (s *recordStore) Add(obj any) error { return s.Update(obj) }

func (s *recordStore) Update(obj any) error {
	rec, k, err := storedRecord(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.records[k] = rec
	s.mu.Unlock()
	s.changed()
	return nil
}

func (s *recordStore) Delete(obj any) error {
	_, k, err := storedRecord(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.records, k)
	s.mu.Unlock()
	s.changed()
	return nil
}

// Replace keeps exactly items: a (re-)list's.
func (s *recordStore) Replace(items []any, _ string) error {
	records := make(map[recordKey]any, len(items))
	for _, item := range items {
		rec, k, err := storedRecord(item)
		if err != nil {
			return err
		}
		records[k] = rec
	}
	s.mu.Lock()
	s.records = records
	s.mu.Unlock()
	s.synced.Store(true)
	s.changed()
	return nil
}

// HasSynced says the first list is stored.
func (s *recordStore) HasSynced() bool { return s.synced.Load() }

func (s *recordStore) List() []any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]any, 0, len(s.records))
	for _, rec := range s.records {
		out = append(out, rec)
	}
	return out
}

// ListKeys are "namespace/<the name's hash>": the names are not kept.
func (s *recordStore) ListKeys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.records))
	for k := range s.records {
		out = append(out, k.namespace.Value()+"/"+k.name.String())
	}
	return out
}

func (s *recordStore) Get(obj any) (any, bool, error) {
	_, k, err := storedRecord(obj)
	if err != nil {
		return nil, false, err
	}
	return s.get(k)
}

// GetByKey takes "namespace/name" (or a name alone, in no namespace).
func (s *recordStore) GetByKey(key string) (any, bool, error) {
	ns, name, ok := strings.Cut(key, "/")
	if !ok {
		ns, name = "", key
	}
	return s.get(recordKey{namespace: intern(ns), name: hashName(name)})
}

func (s *recordStore) get(k recordKey) (any, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, ok := s.records[k]
	return rec, ok, nil
}

// Resync has nothing to do: the store is its own source of truth.
func (s *recordStore) Resync() error { return nil }

var _ cache.Store = (*recordStore)(nil)
