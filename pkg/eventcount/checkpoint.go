package eventcount

// The checkpoint ConfigMap's format: what one holds (counter values, the
// watermark, UIDs retained from versions 1-2), how it merges, and its wire
// encoding in every version this package reads. The Counter in
// eventcount.go decides what to count; this file only says how it is kept.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DataKey is the ConfigMap data key holding the JSON checkpoint: the counter
// values and the watermark (and, from versions 1-2, counted UIDs that are not
// canonical UUIDs).
const DataKey = "checkpoint.json"

// UIDsKey is the ConfigMap binaryData key holding the counted UIDs carried
// over from a version 2 checkpoint, as raw 16-byte values grouped by persist
// time. A version 3 checkpoint has it only while such UIDs are retained.
const UIDsKey = "counted-uids.bin"

// maxCheckpointBytes is the API server's limit on a ConfigMap: the lengths of
// all data and binaryData values together (keys and metadata are not
// counted; binaryData counts raw bytes, not base64) may not exceed 1 MiB.
const maxCheckpointBytes = 1 << 20

// Summary describes a checkpoint ConfigMap, for tools and tests.
type Summary struct {
	// Version is the format version it was written in (1, 2 or 3).
	Version int
	// Watermark is the resourceVersion up to which its counts include every
	// Event (0 for versions 1-2).
	Watermark uint64
	// Counts are the counter values.
	Counts map[Key]uint64
	// CountedUIDs are the counted UIDs it holds (versions 1-2, or retained
	// from them), with the Unix time each was first persisted.
	CountedUIDs map[types.UID]int64
	// Bytes is the size the API server's ConfigMap limit applies to.
	Bytes int
}

// Inspect decodes a checkpoint ConfigMap, whatever its format version.
func Inspect(cm *corev1.ConfigMap) (Summary, error) {
	cp, err := decode([]byte(cm.Data[DataKey]), cm.BinaryData[UIDsKey])
	if err != nil {
		return Summary{}, fmt.Errorf("checkpoint %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return Summary{Version: cp.Version, Watermark: cp.Watermark, Counts: cp.Counts, CountedUIDs: cp.Counted,
		Bytes: len(cm.Data[DataKey]) + len(cm.BinaryData[UIDsKey])}, nil
}

// checkpoint is the persisted state: counter values, the watermark they are
// complete up to, and UIDs counted by versions 1-2 still retained.
type checkpoint struct {
	Version   int // as read (0: none)
	Counts    map[Key]uint64
	Watermark uint64
	Counted   map[types.UID]int64
}

func emptyCheckpoint() checkpoint {
	return checkpoint{Counts: map[Key]uint64{}, Counted: map[types.UID]int64{}}
}

// without returns cp without the counts of the given repositories (cp
// itself when there are none); the watermark and retained UIDs are kept.
func (cp checkpoint) without(repos map[string]uint64) checkpoint {
	if len(repos) == 0 {
		return cp
	}
	out := cp
	out.Counts = make(map[Key]uint64, len(cp.Counts))
	for k, v := range cp.Counts {
		if _, drop := repos[k.Repository]; !drop {
			out.Counts[k] = v
		}
	}
	return out
}

// merge returns a copy of cp that also counts the pending Events it does not
// include, with its watermark raised to frontier (every pending Event is at
// or below it).
func (cp checkpoint) merge(pending []pendingEvent, frontier uint64, now int64) checkpoint {
	out := checkpoint{
		Version:   cp.Version,
		Counts:    make(map[Key]uint64, len(cp.Counts)),
		Watermark: max(cp.Watermark, frontier),
		Counted:   make(map[types.UID]int64, len(cp.Counted)),
	}
	for k, v := range cp.Counts {
		out.Counts[k] = v
	}
	for uid, t := range cp.Counted {
		out.Counted[uid] = t
	}
	for _, p := range pending {
		if p.rv <= cp.Watermark {
			continue // the writer of the watermark counted it
		}
		if _, done := cp.Counted[p.uid]; done && p.uid != "" {
			continue // a version 1-2 process counted it
		}
		out.Counts[p.key.Value()]++
	}
	return out
}

// pruneLegacy drops retained UIDs persisted before cutoff: their Events have
// expired, so nothing can observe them again.
func (cp checkpoint) pruneLegacy(cutoff int64) {
	for uid, t := range cp.Counted {
		if t < cutoff {
			delete(cp.Counted, uid)
		}
	}
}

func (cp checkpoint) equal(o checkpoint) bool {
	if cp.Watermark != o.Watermark || len(cp.Counts) != len(o.Counts) || len(cp.Counted) != len(o.Counted) {
		return false
	}
	for k, v := range cp.Counts {
		if w, ok := o.Counts[k]; !ok || w != v {
			return false
		}
	}
	return true // Counted only ever shrinks: equal lengths, equal sets
}

// wireFormat is the JSON in the ConfigMap; counts are a sorted list so that
// the object diffs readably and encodes deterministically. Version 1 kept
// every counted UID in Counted; version 2 kept there only the UIDs that are
// not canonical UUIDs, the rest being in the binaryData (see encodeUIDs);
// version 3 adds the watermark and keeps UIDs only while they are retained.
type wireFormat struct {
	Version   int                 `json:"version"`
	Watermark string              `json:"watermark,omitempty"`
	Counts    []wireCount         `json:"counts"`
	Counted   map[types.UID]int64 `json:"counted,omitempty"`
}

type wireCount struct {
	Key
	Value uint64 `json:"value"`
}

const (
	wireVersionText   = 1 // every UID in the JSON (read only)
	wireVersionBinary = 2 // canonical UUIDs in binaryData (read only)
	wireVersion       = 3 // the watermark (written)
)

// uidGroupHeader is the size of a group's persist time and UID count.
const uidGroupHeader = 8 + 4

// encode returns the JSON for DataKey and the bytes for UIDsKey (empty
// unless UIDs are retained).
func (cp checkpoint) encode() (data, uids []byte, err error) {
	w := wireFormat{Version: wireVersion, Counts: make([]wireCount, 0, len(cp.Counts))}
	if cp.Watermark > 0 {
		w.Watermark = strconv.FormatUint(cp.Watermark, 10)
	}
	for k, v := range cp.Counts {
		w.Counts = append(w.Counts, wireCount{Key: k, Value: v})
	}
	slices.SortFunc(w.Counts, func(a, b wireCount) int { return compareKeys(a.Key, b.Key) })

	groups := map[int64][][16]byte{}
	for uid, t := range cp.Counted {
		if raw, ok := parseUUID(uid); ok {
			groups[t] = append(groups[t], raw)
			continue
		}
		if w.Counted == nil {
			w.Counted = map[types.UID]int64{}
		}
		w.Counted[uid] = t
	}
	if data, err = json.Marshal(w); err != nil {
		return nil, nil, err
	}
	return data, encodeUIDs(groups), nil
}

// decode reads a checkpoint from the ConfigMap's DataKey and UIDsKey values.
func decode(data, uids []byte) (checkpoint, error) {
	cp := emptyCheckpoint()
	if len(data) == 0 {
		if len(uids) != 0 {
			return checkpoint{}, fmt.Errorf("binaryData %s without data %s", UIDsKey, DataKey)
		}
		return cp, nil
	}
	var w wireFormat
	if err := json.Unmarshal(data, &w); err != nil {
		return checkpoint{}, fmt.Errorf("decoding: %w", err)
	}
	switch w.Version {
	case wireVersionText:
		if len(uids) != 0 {
			// Version 1 never wrote binaryData: ignoring it could drop
			// counted UIDs and so count their Events twice.
			return checkpoint{}, fmt.Errorf("checkpoint version %d with binaryData %s", w.Version, UIDsKey)
		}
	case wireVersionBinary, wireVersion:
		if err := decodeUIDs(uids, cp.Counted); err != nil {
			return checkpoint{}, fmt.Errorf("decoding %s: %w", UIDsKey, err)
		}
	default:
		return checkpoint{}, fmt.Errorf("unknown checkpoint version %d", w.Version)
	}
	if w.Watermark != "" {
		if w.Version < wireVersion {
			return checkpoint{}, fmt.Errorf("checkpoint version %d with a watermark", w.Version)
		}
		rv, ok := ParseResourceVersion(w.Watermark)
		if !ok {
			return checkpoint{}, fmt.Errorf("watermark %q is not a resourceVersion", w.Watermark)
		}
		cp.Watermark = rv
	}
	cp.Version = w.Version
	for _, c := range w.Counts {
		cp.Counts[c.Key] += c.Value
	}
	for uid, t := range w.Counted {
		addCounted(cp.Counted, uid, t)
	}
	return cp, nil
}

// encodeUIDs writes the groups in time order, each group's UIDs sorted, so
// that equal sets encode to equal bytes.
func encodeUIDs(groups map[int64][][16]byte) []byte {
	times := make([]int64, 0, len(groups))
	size := 0
	for t, g := range groups {
		times = append(times, t)
		size += uidGroupHeader + 16*len(g)
	}
	slices.Sort(times)
	out := make([]byte, 0, size)
	for _, t := range times {
		g := groups[t]
		slices.SortFunc(g, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
		out = binary.BigEndian.AppendUint64(out, uint64(t))
		out = binary.BigEndian.AppendUint32(out, uint32(len(g)))
		for _, raw := range g {
			out = append(out, raw[:]...)
		}
	}
	return out
}

func decodeUIDs(b []byte, into map[types.UID]int64) error {
	for len(b) > 0 {
		if len(b) < uidGroupHeader {
			return fmt.Errorf("truncated group header (%d bytes)", len(b))
		}
		t := int64(binary.BigEndian.Uint64(b))
		n := binary.BigEndian.Uint32(b[8:])
		b = b[uidGroupHeader:]
		if uint64(n)*16 > uint64(len(b)) {
			return fmt.Errorf("group of %d UIDs in %d bytes", n, len(b))
		}
		for i := uint32(0); i < n; i++ {
			addCounted(into, formatUUID(b[:16]), t)
			b = b[16:]
		}
	}
	return nil
}

// addCounted adds uid; the encoder never writes one twice, but if a
// checkpoint does, keeping the later time never prunes it early.
func addCounted(m map[types.UID]int64, uid types.UID, t int64) {
	if old, ok := m[uid]; !ok || t > old {
		m[uid] = t
	}
}

// parseUUID returns the 16 bytes of a UID in canonical UUID text: 8-4-4-4-12
// lowercase hex digits, as the API server assigns them. Anything else
// (uppercase, braces, other lengths) is not canonical, so that formatUUID
// gives back exactly the UID parsed.
func parseUUID(uid types.UID) (raw [16]byte, ok bool) {
	s := string(uid)
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return raw, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return raw, false
		}
		raw[j] = hi<<4 | lo
		j++
	}
	return raw, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// formatUUID is the canonical text of 16 raw bytes.
func formatUUID(raw []byte) types.UID {
	var s [36]byte
	hex.Encode(s[0:8], raw[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], raw[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], raw[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], raw[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], raw[10:16])
	return types.UID(s[:])
}

func compareKeys(a, b Key) int {
	for _, p := range [][2]string{{a.Kind, b.Kind}, {a.Namespace, b.Namespace}, {a.Repository, b.Repository}, {a.Action, b.Action}, {a.Environment, b.Environment}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}
