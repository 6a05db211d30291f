package metrics

// A repository renamed or transferred on GitHub keeps its id, and so do its
// objects; the recorder moves each object to the new name as deliveries
// (or a reconcile pass) about it arrive, so for a while some objects of the
// repository say the old name and some the new one. The object-derived
// families must not count the repository twice meanwhile: every object of
// one repository id (per namespace) is labelled with the name of the object
// of that id named last (its stablev1.AnnotationRepositoryNamedAt), so the
// first object to follow the rename moves all of the repository's series
// in the same refresh, and the old label's series end. Objects without an
// id (recorded from hand-made deliveries) keep their own name. Counters
// from Events are not objects: past deliveries stay counted under the name
// they were delivered under.

// nsID is a repository id within a namespace.
type nsID struct {
	namespace string
	id        int64
}

// repositoryNames is the newest name of each repository id.
type repositoryNames map[nsID]string

// newestNames finds the newest name of every repository id among objects
// (the latest NamedAt; on a tie, the name that sorts first, so the result
// does not depend on the caches' order). Only valid names are candidates.
func newestNames(objects ...[]*cachedObject) repositoryNames {
	names := repositoryNames{}
	at := map[nsID]unixTime{}
	for _, list := range objects {
		for _, o := range list {
			name := o.Repository.Value()
			if o.RepositoryID <= 0 || name == "" {
				continue
			}
			k := nsID{o.Namespace.Value(), o.RepositoryID}
			old, ok := names[k]
			if !ok || o.NamedAt > at[k] || (o.NamedAt == at[k] && name < old) {
				names[k], at[k] = name, o.NamedAt
			}
		}
	}
	return names
}

// of is o's repository label before the cap: its id's newest name.
func (n repositoryNames) of(o *cachedObject) string {
	if o.RepositoryID > 0 {
		if name, ok := n[nsID{o.Namespace.Value(), o.RepositoryID}]; ok {
			return name
		}
	}
	return o.Repository.Value()
}

// followRenames returns the records with each object's repository replaced
// by its id's newest name. Records are shared with the caches and never
// modified: only those whose name changes are copied, and a list without
// any is returned as it is.
func followRenames(prs []*cachedPullRequest, brs []*cachedBranch, deps []*cachedDeployment) ([]*cachedPullRequest, []*cachedBranch, []*cachedDeployment) {
	names := newestNames(objectsOf(prs), objectsOf(brs), objectsOf(deps))
	if len(names) == 0 {
		return prs, brs, deps
	}
	return renamed(prs, names), renamed(brs, names), renamed(deps, names)
}

// record is a cache record: its cachedObject, and a copy of itself.
type record[T any] interface {
	object() *cachedObject
	clone() T
}

func (p *cachedPullRequest) object() *cachedObject { return &p.cachedObject }
func (b *cachedBranch) object() *cachedObject      { return &b.cachedObject }
func (d *cachedDeployment) object() *cachedObject  { return &d.cachedObject }

func (p *cachedPullRequest) clone() *cachedPullRequest { c := *p; return &c }
func (b *cachedBranch) clone() *cachedBranch           { c := *b; return &c }
func (d *cachedDeployment) clone() *cachedDeployment   { c := *d; return &c }

func objectsOf[T record[T]](list []T) []*cachedObject {
	out := make([]*cachedObject, len(list))
	for i, r := range list {
		out[i] = r.object()
	}
	return out
}

func renamed[T record[T]](list []T, names repositoryNames) []T {
	var out []T
	for i, r := range list {
		name := names.of(r.object())
		if name == r.object().Repository.Value() {
			continue
		}
		if out == nil {
			out = append(make([]T, 0, len(list)), list...)
		}
		c := r.clone()
		c.object().Repository = intern(name)
		out[i] = c
	}
	if out == nil {
		return list
	}
	return out
}
