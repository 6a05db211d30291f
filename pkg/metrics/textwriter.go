package metrics

// The per-repository families written as text straight from the view's
// samples, the way kube-state-metrics writes its families (its
// pkg/metric and pkg/metrics_store write each family's text themselves,
// with no client_golang metric in between). Through the registry, a
// render built one dto.Metric, its label pairs and its buckets for every
// series (gathering: ~53 ms and 27 MB at 1,000 repositories), sorted them,
// and encoded them (~85 ms): the last ~0.3 s before the first complete
// /metrics after a start at 100k objects, most of it in garbage (issue 23).
//
// The bytes are the ones the registry and expfmt's encoders make, for the
// Prometheus text format and OpenMetrics text (expfmt's text_create.go and
// openmetrics_create.go, prometheus/common v0.66.1): the series in the
// registry's order (by label values, labels taken in name order), every
// family's HELP and TYPE lines, histograms' le label last, and the numbers
// formatted as those encoders format them. TestTextWriter_WritesWhatTheRegistryEncodes
// holds the two side by side, and FuzzFamilyText tries label values and
// numbers. Other formats (protobuf) still go through the registry.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// textKind is a text format a family is written in directly.
type textKind int

const (
	textPlain       textKind = iota // text/plain; version=0.0.4
	textOpenMetrics                 // application/openmetrics-text, 0.0.1 and 1.0.0 alike
)

// directTextOf says in which text format f is written directly, if it is
// one: the Prometheus text format or OpenMetrics text, whatever escaping
// scheme was negotiated, since every name the families use is a legacy
// one, which no scheme changes (textFamilyOf refuses any other).
func directTextOf(f expfmt.Format) (textKind, bool) {
	switch f.FormatType() {
	case expfmt.TypeTextPlain:
		return textPlain, true
	case expfmt.TypeOpenMetrics:
		return textOpenMetrics, true
	}
	return 0, false
}

// textFamily is a family prepared to be written as text.
type textFamily struct {
	family
	// order is the label indices in label-name order: the order of a
	// const metric's label pairs, and so of the text and of the sort.
	order []int
	// header is the HELP and TYPE lines, per textKind.
	header [2]string
}

// textFamilyOf prepares f, whose name and labels must be legacy ones.
func textFamilyOf(f family) (textFamily, error) {
	if !model.LegacyValidation.IsValidMetricName(f.name) {
		return textFamily{}, fmt.Errorf("family %q: not a legacy metric name", f.name)
	}
	for _, l := range f.labels {
		if !model.LegacyValidation.IsValidLabelName(l) || l == model.BucketLabel {
			return textFamily{}, fmt.Errorf("family %q: label %q cannot be written directly", f.name, l)
		}
	}
	t := textFamily{family: f, order: make([]int, len(f.labels))}
	for i := range t.order {
		t.order[i] = i
	}
	slices.SortStableFunc(t.order, func(a, b int) int { return strings.Compare(f.labels[a], f.labels[b]) })
	// The text format names the family as it is; OpenMetrics names a
	// counter without its _total (and a counter without one "unknown"),
	// and escapes a double quote in the help too.
	textType, omName, omType := "gauge", f.name, "gauge"
	switch f.kind {
	case kindCounter:
		textType, omType = "counter", "unknown"
		if n, ok := strings.CutSuffix(f.name, "_total"); ok {
			omName, omType = n, "counter"
		}
	case kindHistogram:
		textType, omType = "histogram", "histogram"
	}
	t.header[textPlain] = "# HELP " + f.name + " " + helpEscaper.Replace(f.help) + "\n# TYPE " + f.name + " " + textType + "\n"
	t.header[textOpenMetrics] = "# HELP " + omName + " " + valueEscaper.Replace(f.help) + "\n# TYPE " + omName + " " + omType + "\n"
	return t, nil
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// errDuplicateSeries is what the registry's Gather refuses too.
var errDuplicateSeries = errors.New("two series with the same label values")

// appendText appends the family's text for samples in format k to buf,
// nothing for no samples (the registry leaves such a family out). samples
// are sorted in place.
func (t *textFamily) appendText(buf []byte, samples []sample, k textKind) ([]byte, error) {
	if len(samples) == 0 {
		return buf, nil
	}
	for _, s := range samples {
		if len(s.labels) != len(t.labels) {
			return buf, fmt.Errorf("%s: %d label values for %d labels", t.name, len(s.labels), len(t.labels))
		}
		for _, v := range s.labels {
			if !utf8.ValidString(v) {
				return buf, fmt.Errorf("%s: label value %q is not valid UTF-8", t.name, v)
			}
		}
		if t.kind == kindHistogram && s.hist == nil {
			return buf, fmt.Errorf("%s: a histogram sample without its histogram", t.name)
		}
	}
	slices.SortFunc(samples, t.compare)
	for i := 1; i < len(samples); i++ {
		if t.compare(samples[i-1], samples[i]) == 0 {
			return buf, fmt.Errorf("%s %v: %w", t.name, samples[i].labels, errDuplicateSeries)
		}
	}
	// At its size at once: appended to, a buffer of megabytes grows by a
	// quarter at a time, each step a copy (a render at 1,000 repositories
	// left 16 MB of such garbage, four times its largest family's text).
	buf = slices.Grow(buf, t.estimate(samples))
	buf = append(buf, t.header[k]...)
	for _, s := range samples {
		if t.kind != kindHistogram {
			buf = t.appendSeries(buf, "", s.labels, k, false, 0)
			buf = appendFloat(buf, s.value, k)
			buf = append(buf, '\n')
			continue
		}
		h := s.hist
		bounds := make([]float64, 0, len(h.buckets)+1)
		for b := range h.buckets {
			bounds = append(bounds, b)
		}
		slices.Sort(bounds)
		for _, b := range bounds {
			buf = t.appendSeries(buf, "_bucket", s.labels, k, true, b)
			buf = appendCount(buf, h.buckets[b], k)
			buf = append(buf, '\n')
		}
		if len(bounds) == 0 || !math.IsInf(bounds[len(bounds)-1], +1) {
			buf = t.appendSeries(buf, "_bucket", s.labels, k, true, math.Inf(+1))
			buf = appendCount(buf, h.count, k)
			buf = append(buf, '\n')
		}
		buf = t.appendSeries(buf, "_sum", s.labels, k, false, 0)
		buf = appendFloat(buf, h.sum, k)
		buf = append(buf, '\n')
		buf = t.appendSeries(buf, "_count", s.labels, k, false, 0)
		buf = appendCount(buf, h.count, k)
		buf = append(buf, '\n')
	}
	return buf, nil
}

// estimate is about the size of the family's text for samples, in either
// format, a little over unless values need escaping.
func (t *textFamily) estimate(samples []sample) int {
	n := len(t.header[textOpenMetrics]) + len(t.header[textPlain])
	for _, s := range samples {
		// The name's suffix, braces, the space, the value, the newline.
		line, lines := len(t.name)+32, 1
		for i, v := range s.labels {
			line += len(t.labels[i]) + len(v) + 4 // =, two quotes, a comma
		}
		if s.hist != nil {
			line += 32 // le and its value
			lines = len(s.hist.buckets) + 3
		}
		n += line * lines
	}
	return n
}

// compare orders samples as the registry does: by label values, the labels
// in name order.
func (t *textFamily) compare(a, b sample) int {
	for _, i := range t.order {
		if c := strings.Compare(a.labels[i], b.labels[i]); c != 0 {
			return c
		}
	}
	return 0
}

// appendSeries appends a series' name, its labels and, with le, the
// bucket's upper bound, then the space before the value.
func (t *textFamily) appendSeries(buf []byte, suffix string, values []string, k textKind, le bool, bound float64) []byte {
	buf = append(buf, t.name...)
	buf = append(buf, suffix...)
	if len(values) == 0 && !le {
		return append(buf, ' ')
	}
	sep := byte('{')
	for _, i := range t.order {
		buf = append(buf, sep)
		buf = append(buf, t.labels[i]...)
		buf = append(buf, '=', '"')
		buf = appendEscapedValue(buf, values[i])
		buf = append(buf, '"')
		sep = ','
	}
	if le {
		buf = append(buf, sep)
		buf = append(buf, model.BucketLabel...)
		buf = append(buf, '=', '"')
		buf = appendFloat(buf, bound, k)
		buf = append(buf, '"')
	}
	return append(buf, '}', ' ')
}

// appendEscapedValue escapes a label value as both formats do: backslash,
// newline and double quote.
func appendEscapedValue(buf []byte, v string) []byte {
	i := 0
	for i < len(v) && v[i] != '\\' && v[i] != '\n' && v[i] != '"' {
		i++
	}
	buf = append(buf, v[:i]...)
	for ; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '"':
			buf = append(buf, '\\', '"')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// appendFloat formats f as expfmt's writeFloat (text) and
// writeOpenMetricsFloat (OpenMetrics) do.
func appendFloat(buf []byte, f float64, k textKind) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, +1):
		return append(buf, "+Inf"...)
	case math.IsInf(f, -1):
		return append(buf, "-Inf"...)
	case f == 0: // and so -0 too
		if k == textOpenMetrics {
			return append(buf, "0.0"...)
		}
		return append(buf, '0')
	}
	start := len(buf)
	buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
	if k == textOpenMetrics && !bytes.ContainsAny(buf[start:], "e.") {
		buf = append(buf, '.', '0')
	}
	return buf
}

// appendCount formats a histogram's count: a float in the text format (the
// encoder converts it), an integer in OpenMetrics.
func appendCount(buf []byte, n uint64, k textKind) []byte {
	if k == textOpenMetrics {
		return strconv.AppendUint(buf, n, 10)
	}
	return appendFloat(buf, float64(n), k)
}
