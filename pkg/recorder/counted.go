package recorder

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// A review or a deployment status can reach the recorder twice under two
// identities: as a delivery (its GUID) and from a reconcile pass's backfill
// (a synthetic id, githubevent.FromAPIReviews / FromAPIDeployment). The
// counts on the object (reviewCount, approvalCount, dismissedCount,
// statusCount) must move once per review or status, not once per way it
// arrived, so the object keeps the GitHub ids it has counted, with what
// each was counted as, in its status (status.countedReviews,
// status.countedStatuses); both paths count an id only when it is not
// there yet. A delivery without an id (never seen from GitHub) still
// counts once per delivery.

// Review count flags.
const (
	countedReview    = 's'
	countedApproval  = 'a'
	countedDismissal = 'd'
)

// countedSet is the decoded form of one of those fields: "<id>:<flags>"
// entries, comma separated, sorted by id (flags: countedReview, ...; none
// for a deployment status).
type countedSet map[int64]string

func readCounted(field string) countedSet {
	set := countedSet{}
	for _, e := range strings.Split(field, ",") {
		id, flags, _ := strings.Cut(e, ":")
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > 0 {
			set[n] = flags
		}
	}
	return set
}

func (set countedSet) write(field *string) {
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmp.Compare[int64])
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
		if f := set[id]; f != "" {
			b.WriteString(":" + f)
		}
	}
	if b.Len() == 0 {
		return
	}
	*field = b.String()
}

// add records flag for id; reports whether it was not recorded before.
func (set countedSet) add(id int64, flag byte) bool {
	f, ok := set[id]
	if flag == 0 {
		set[id] = f
		return !ok
	}
	if strings.IndexByte(f, flag) >= 0 {
		return false
	}
	b := []byte(f + string(flag))
	slices.Sort(b)
	set[id] = string(b)
	return true
}

// with is how many ids carry flag (any id when flag is 0).
func (set countedSet) with(flag byte) int64 {
	n := int64(0)
	for _, f := range set {
		if flag == 0 || strings.IndexByte(f, flag) >= 0 {
			n++
		}
	}
	return n
}

// countOnce records flag for id in the object's set in field and reports
// whether the count it stands for should move: always for an id GitHub did
// not give (id <= 0), else only the first time.
func countOnce(field *string, id int64, flag byte) bool {
	if id <= 0 {
		return true
	}
	set := readCounted(*field)
	if !set.add(id, flag) {
		return false
	}
	set.write(field)
	return true
}
