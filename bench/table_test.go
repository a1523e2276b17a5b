package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
)

// goal is a figure's target: its ratio to the baseline (onRatio) or Herald's
// own figure compared with value.
type goal struct {
	onRatio bool
	atMost  bool // <= value; else >= value
	value   float64
	text    string // as the table shows it, e.g. "ratio >= 1.0"
}

func ratioAtLeast(v float64) goal {
	return goal{onRatio: true, value: v, text: fmt.Sprintf("ratio >= %.1f", v)}
}
func ratioAtMost(v float64) goal {
	return goal{onRatio: true, atMost: true, value: v, text: fmt.Sprintf("ratio <= %.1f", v)}
}
func atMost(v float64, unit string) goal {
	return goal{atMost: true, value: v, text: strings.TrimSpace(fmt.Sprintf("<= %g %s", v, unit))}
}

// figure is one row's measurement in one run. base is NaN where the row has
// no baseline.
type figure struct {
	row    string // scenario and what is measured, e.g. "fan-out: publishes/s"
	unit   string
	herald float64
	base   float64
	goal   *goal // nil: reported, no target
}

func (f figure) ratio() float64 { return f.herald / f.base }

// recorder collects figures over runs, rows in the order they first came.
type recorder struct {
	mu    sync.Mutex
	order []string
	runs  map[string][]figure
}

func newRecorder() *recorder { return &recorder{runs: map[string][]figure{}} }

func (r *recorder) add(f figure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.runs[f.row]; !ok {
		r.order = append(r.order, f.row)
	}
	r.runs[f.row] = append(r.runs[f.row], f)
}

// figures returns every figure recorded, row by row.
func (r *recorder) figures() []figure {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []figure
	for _, row := range r.order {
		out = append(out, r.runs[row]...)
	}
	return out
}

// median of vs (the mean of the middle two for an even count).
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// write prints one Markdown table: per row, the median over runs of
// Herald's figure and of the baseline's, the median ratio with its spread
// (min-max over runs), the target, and whether the median meets it.
func (r *recorder) write(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(w, "| scenario | Herald | baseline | ratio median (min–max) | target | met? |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, row := range r.order {
		fs := r.runs[row]
		var hs, bs, rs []float64
		for _, f := range fs {
			hs = append(hs, f.herald)
			if !math.IsNaN(f.base) {
				bs = append(bs, f.base)
				rs = append(rs, f.ratio())
			}
		}
		h, unit := median(hs), fs[0].unit
		base, ratio := "—", "—"
		if len(bs) > 0 {
			base = number(median(bs)) + " " + unit
			ratio = fmt.Sprintf("%.2f (%.2f–%.2f)", median(rs), slices.Min(rs), slices.Max(rs))
		}
		target, met := "—", "—"
		if g := fs[0].goal; g != nil {
			target, met = g.text, "no"
			v := h
			if g.onRatio {
				v = median(rs)
			}
			if (g.atMost && v <= g.value) || (!g.atMost && v >= g.value) {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", row, strings.TrimSpace(number(h)+" "+unit), base, ratio, target, met)
	}
	fmt.Fprintf(w, "\n(%d run(s) per row; figures are medians over runs)\n", r.maxRuns())
}

func (r *recorder) maxRuns() int {
	n := 0
	for _, fs := range r.runs {
		n = max(n, len(fs))
	}
	return n
}

// number formats v readably: thousands separated, two decimals below 10,
// one below 100.
func number(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	switch {
	case math.Abs(v) < 10:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	case math.Abs(v) < 100:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
