package metrics

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// The Events' first list, decoded by hand from its protobuf. client-go
// decodes each page of Events whole, every string of every Event
// (message, source, related object, managed fields) a heap allocation;
// a CPU profile of the 100k-object start-up, after the objects' decode was
// made lean (itemfast.go), put that decode at 13% of the function's CPU
// and most of what its collector, another 29%, had to clear. The counter
// reads only what slimEvent keeps. readEventPage reads just that from the
// page's bytes, straight into slimEvent's records, and declines (the page
// is decoded by client-go, as before) wherever it is not the plain shape
// gogo-protobuf's generated code writes: a field it reads with another
// wire type, a group, a varint or length that runs past its message, a
// content encoding. Fields it does not read are skipped by their wire
// type, not decoded.
// TestReadEventPage_SlimsWhatClientGoDecodes and FuzzReadEventPage hold it
// to client-go's decode, slimmed.

// eventLister lists Events through rc (core/v1, namespace ns), and watches
// through watcher. Its List is client-go's; the Events' reflector lists
// through listSlim.
type eventLister struct {
	rc      rest.Interface
	ns      string
	watcher EventClient
	// pages is the buffer a list's pages are read into, kept from a page
	// to the next of one list.
	pages *pageBuffer
}

var _ EventClient = eventLister{}

// slimEventLister is a list client whose pages are the records staged
// for counting (slimEvent's), not Events.
type slimEventLister interface {
	listSlim(ctx context.Context, o metav1.ListOptions) (*slimList, error)
}

func (l eventLister) request(o metav1.ListOptions) *rest.Request {
	return l.rc.Get().Namespace(l.ns).Resource("events").VersionedParams(&o, coreParameterCodec).
		SetHeader("Accept", "application/vnd.kubernetes.protobuf, application/json")
}

func (l eventLister) List(ctx context.Context, o metav1.ListOptions) (*corev1.EventList, error) {
	page := &corev1.EventList{}
	if err := l.request(o).Do(ctx).Into(page); err != nil {
		return nil, err
	}
	return page, nil
}

func (l eventLister) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return l.watcher.Watch(ctx, o)
}

// pageBuffer holds the buffer the Events' pages are read into between the
// pages of one list: a page of 5,000 Events is ~5 MB, which io.ReadAll
// (client-go's read of a body) grows to by doubling, the page's size again
// in garbage each time, 200 MB over a start-up at 100k Events (in pages of
// 1,000). (A sync.Pool loses it at every collection, and the start-up
// collected about once a page.) The last page of a list lets it go.
type pageBuffer struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (p *pageBuffer) get() *bytes.Buffer {
	var b *bytes.Buffer
	if p != nil {
		p.mu.Lock()
		b, p.buf = p.buf, nil
		p.mu.Unlock()
	}
	if b == nil {
		b = new(bytes.Buffer)
	}
	b.Reset()
	return b
}

func (p *pageBuffer) keep(b *bytes.Buffer) {
	if p != nil {
		p.mu.Lock()
		p.buf = b
		p.mu.Unlock()
	}
}

// listSlim lists a page of Events and returns it as the records slimEvent
// makes: read from its protobuf by readEventPage or, where that declines,
// decoded by client-go's codecs and slimmed. An answer other than 2xx is
// the API server's Status, as client-go's List returns it.
func (l eventLister) listSlim(ctx context.Context, o metav1.ListOptions) (*slimList, error) {
	body, err := l.request(o).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	buf := l.pages.get()
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, err
	}
	if page, ok := readEventPage(buf.Bytes()); ok {
		if page.Continue != "" {
			l.pages.keep(buf)
		}
		return page, nil
	}
	obj, err := runtime.Decode(coreCodecs.UniversalDeserializer(), buf.Bytes())
	if err != nil {
		return nil, err
	}
	list, ok := obj.(*corev1.EventList)
	if !ok {
		return nil, fmt.Errorf("listing Events: the API server answered a %T", obj)
	}
	return slimmedEvents(list), nil
}

// slimmedEvents is list with its Events slimmed (slimEvent).
func slimmedEvents(list *corev1.EventList) *slimList {
	page := &slimList{ListMeta: metav1.ListMeta{ResourceVersion: list.ResourceVersion, Continue: list.Continue,
		RemainingItemCount: list.RemainingItemCount}, Items: make([]runtime.Object, len(list.Items))}
	for i := range list.Items {
		ev, _ := slimEvent(&list.Items[i])
		page.Items[i] = ev.(runtime.Object)
	}
	return page
}

// protoMagic starts every protobuf body of the API server
// (k8s.io/apimachinery/pkg/runtime/serializer/protobuf).
var protoMagic = []byte("k8s\x00")

// wire is a protobuf message being read: field by field, each field's
// number and wire type, and a varint or length-delimited value.
type wire struct {
	b   []byte
	i   int
	bad bool
}

func (w *wire) more() bool { return !w.bad && w.i < len(w.b) }

func (w *wire) varint() uint64 {
	v, n := binary.Uvarint(w.b[w.i:])
	if n <= 0 {
		w.bad = true
		return 0
	}
	w.i += n
	return v
}

// field reads a field's key.
func (w *wire) field() (num int, typ int) {
	k := w.varint()
	if k>>3 == 0 || k>>3 > 1<<29 {
		w.bad = true
	}
	return int(k >> 3), int(k & 7)
}

// bytes reads a length-delimited value.
func (w *wire) bytes() []byte {
	n := w.varint()
	if w.bad || n > uint64(len(w.b)-w.i) {
		w.bad = true
		return nil
	}
	v := w.b[w.i : w.i+int(n)]
	w.i += int(n)
	return v
}

// skip skips a value of wire type typ; groups (3, 4) are refused.
func (w *wire) skip(typ int) {
	switch typ {
	case 0:
		w.varint()
	case 1, 5:
		size := 8
		if typ == 5 {
			size = 4
		}
		if len(w.b)-w.i < size {
			w.bad = true
			return
		}
		w.i += size
	case 2:
		w.bytes()
	default:
		w.bad = true
	}
}

// message reads a length-delimited field of wire type typ as a message
// and calls fn with each of its fields.
func (w *wire) message(typ int, fn func(m *wire, num, typ int)) {
	if typ != 2 {
		w.bad = true
		return
	}
	m := wire{b: w.bytes()}
	if w.bad {
		return
	}
	for m.more() {
		num, typ := m.field()
		if m.bad {
			break
		}
		fn(&m, num, typ)
	}
	w.bad = w.bad || m.bad
}

// str reads a string field of wire type typ.
func (w *wire) str(typ int) string {
	if typ != 2 {
		w.bad = true
		return ""
	}
	return string(w.bytes())
}

// timestamp reads a Timestamp (1 seconds, 2 nanoseconds) of wire type typ,
// for metav1.Time's and metav1.MicroTime's Unmarshal; set is false when it
// has no bytes.
func (w *wire) timestamp(typ int) (secs int64, nanos int32, set bool) {
	w.message(typ, func(m *wire, num, typ int) {
		set = true
		switch {
		case num == 1 && typ == 0:
			secs = int64(m.varint())
		case num == 2 && typ == 0:
			nanos = int32(m.varint())
		case num == 1 || num == 2:
			m.bad = true
		default:
			m.skip(typ)
		}
	})
	return secs, nanos, set
}

// time reads a metav1.Time as its Unmarshal does: no bytes is the zero
// time, else the seconds (the nanoseconds are dropped).
func (w *wire) time(typ int) metav1.Time {
	secs, _, set := w.timestamp(typ)
	if !set {
		return metav1.Time{}
	}
	return metav1.Time{Time: time.Unix(secs, 0).Local()}
}

// microTime reads a metav1.MicroTime as its Unmarshal does: no bytes is
// the zero time, else the time truncated to microseconds.
func (w *wire) microTime(typ int) metav1.MicroTime {
	secs, nanos, set := w.timestamp(typ)
	if !set {
		return metav1.MicroTime{}
	}
	return metav1.MicroTime{Time: time.Unix(secs, int64(time.Duration(nanos).Truncate(time.Microsecond))).Local()}
}

// readEventPage reads an EventList page in the API server's protobuf into
// the records slimEvent makes of its Events, or declines. Each Event is
// read into one scratch Event (only the fields slimEvent reads) and
// slimmed at once.
func readEventPage(body []byte) (*slimList, bool) {
	if !bytes.HasPrefix(body, protoMagic) {
		return nil, false
	}
	// runtime.Unknown: 1 typeMeta, 2 raw, 3 contentEncoding, 4 contentType.
	env := wire{b: body[len(protoMagic):]}
	var raw []byte
	var kind string
	for env.more() {
		num, typ := env.field()
		switch {
		case env.bad:
		case num == 1:
			env.message(typ, func(m *wire, num, typ int) {
				if num == 2 { // TypeMeta: 1 apiVersion, 2 kind
					kind = m.str(typ)
				} else {
					m.skip(typ)
				}
			})
		case num == 2 && typ == 2:
			raw = env.bytes()
		case num == 3 && typ == 2:
			if len(env.bytes()) != 0 {
				return nil, false
			}
		default:
			env.skip(typ)
		}
	}
	if env.bad || kind != "EventList" {
		return nil, false
	}
	page := &slimList{Items: make([]runtime.Object, 0, countItems(raw))}
	var ev corev1.Event
	annotations := map[string]string{}
	list := wire{b: raw}
	for list.more() {
		num, typ := list.field()
		switch {
		case list.bad:
		case num == 1: // ListMeta: 2 resourceVersion, 3 continue, 4 remainingItemCount
			list.message(typ, func(m *wire, num, typ int) {
				switch {
				case num == 2:
					page.ResourceVersion = m.str(typ)
				case num == 3:
					page.Continue = m.str(typ)
				case num == 4 && typ == 0:
					n := int64(m.varint())
					page.RemainingItemCount = &n
				case num == 4:
					m.bad = true
				default:
					m.skip(typ)
				}
			})
		case num == 2:
			clear(annotations)
			ev = corev1.Event{ObjectMeta: metav1.ObjectMeta{Annotations: annotations}}
			list.message(typ, eventFields(&ev))
			rec, _ := slimEvent(&ev)
			page.Items = append(page.Items, rec.(runtime.Object))
		default:
			list.skip(typ)
		}
	}
	return page, !list.bad
}

// countItems counts an EventList's items (field 2), for the page's
// capacity; 0 where the list is not well formed (readEventPage declines
// it then).
func countItems(raw []byte) int {
	n := 0
	for w := (wire{b: raw}); w.more(); {
		num, typ := w.field()
		if num == 2 {
			n++
		}
		w.skip(typ)
	}
	return n
}

// eventFields reads an Event's fields into ev: 1 metadata, 2
// involvedObject, 10 eventTime, 12 action (what slimEvent reads).
func eventFields(ev *corev1.Event) func(m *wire, num, typ int) {
	return func(m *wire, num, typ int) {
		switch num {
		case 1: // metadata
			m.message(typ, func(m *wire, num, typ int) { metaField(&ev.ObjectMeta, m, num, typ) })
		case 2: // involvedObject: 1 kind
			m.message(typ, func(m *wire, num, typ int) {
				if num == 1 {
					ev.InvolvedObject.Kind = m.str(typ)
				} else {
					m.skip(typ)
				}
			})
		case 10:
			ev.EventTime = m.microTime(typ)
		case 12:
			ev.Action = m.str(typ)
		default:
			m.skip(typ)
		}
	}
}

// metaField reads an ObjectMeta field: 1 name, 3 namespace, 5 uid, 6
// resourceVersion, 8 creationTimestamp, 12 annotations (the two slimEvent
// reads).
func metaField(om *metav1.ObjectMeta, m *wire, num, typ int) {
	switch num {
	case 1:
		om.Name = m.str(typ)
	case 3:
		om.Namespace = m.str(typ)
	case 5:
		om.UID = types.UID(m.str(typ))
	case 6:
		om.ResourceVersion = m.str(typ)
	case 8:
		om.CreationTimestamp = m.time(typ)
	case 12: // a map entry: 1 key, 2 value
		var key, value string
		m.message(typ, func(e *wire, num, typ int) {
			switch num {
			case 1:
				key = e.str(typ)
			case 2:
				value = e.str(typ)
			default:
				e.skip(typ)
			}
		})
		if key == stablev1.AnnotationRepository || key == stablev1.AnnotationEnvironment {
			om.Annotations[key] = value // readEventPage's map, never nil
		}
	default:
		m.skip(typ)
	}
}
