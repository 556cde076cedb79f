package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ReadResults reads JSON lines written by Result.WriteJSON; lines that are
// not JSON objects (a log line that slipped in) are skipped.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, fmt.Errorf("read results: line %d: %w", n, err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return out, nil
}

// cell is the runs of one case on one broker.
type cell struct{ runs []Result }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (c *cell) med(f func(*Result) float64) float64 {
	var xs []float64
	for i := range c.runs {
		if c.runs[i].Error == "" {
			xs = append(xs, f(&c.runs[i]))
		}
	}
	return median(xs)
}

// lost sums loss over the rounds; any loss is a finding.
func (c *cell) lost() (lost, expected uint64) {
	for _, r := range c.runs {
		lost += r.Lost
		expected += r.Expected
	}
	return
}

// Reference is figures measured elsewhere, shown beside the runs: one
// column per Columns entry, rows keyed by case label.
type Reference struct {
	Columns []string
	Rows    map[string][]string
}

// ReadReference reads a tab-separated file: a header line "case<TAB>column
// ...", then one line per case; lines starting with # are comments.
func ReadReference(r io.Reader) (*Reference, error) {
	ref := &Reference{Rows: map[string][]string{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if ref.Columns == nil {
			if len(f) < 2 {
				return nil, fmt.Errorf("read reference: line %d: header needs case and at least one column, tab-separated", n)
			}
			ref.Columns = f[1:]
			continue
		}
		if len(f) != len(ref.Columns)+1 {
			return nil, fmt.Errorf("read reference: line %d: %d fields, header has %d", n, len(f), len(ref.Columns)+1)
		}
		ref.Rows[f[0]] = f[1:]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read reference: %w", err)
	}
	return ref, nil
}

// WriteTable writes a Markdown table comparing brokers case by case: the
// median over rounds of broker CPU per unit, peak RSS, latency and the
// tool's own CPU per unit; loss, duplicates and reorders summed over the
// rounds. Ratios are each broker against the first one seen.
// ref (may be nil) adds its columns after the case.
func WriteTable(w io.Writer, results []Result, ref *Reference) {
	var cases, brokers []string
	cells := map[[2]string]*cell{}
	for _, r := range results {
		if !slices.Contains(cases, r.Case) {
			cases = append(cases, r.Case)
		}
		if !slices.Contains(brokers, r.Broker) {
			brokers = append(brokers, r.Broker)
		}
		k := [2]string{r.Case, r.Broker}
		if cells[k] == nil {
			cells[k] = &cell{}
		}
		cells[k].runs = append(cells[k].runs, r)
	}
	hdr := []string{"case", "unit"}
	if ref != nil {
		hdr = append(hdr, ref.Columns...)
	}
	for i, b := range brokers {
		hdr = append(hdr, b+" µs/unit")
		if i > 0 {
			hdr = append(hdr, "×"+brokers[0])
		}
	}
	for _, b := range brokers {
		hdr = append(hdr, b+" lost", b+" peak MiB", b+" p50/p99 µs", "tool µs/unit ("+b+")")
	}
	hdr = append(hdr, "rounds", "notes")
	fmt.Fprintln(w, "| "+strings.Join(hdr, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(hdr)))
	for _, cs := range cases {
		row := []string{cs, ""}
		if ref != nil {
			rr := ref.Rows[cs]
			for i := range ref.Columns {
				if i < len(rr) {
					row = append(row, rr[i])
				} else {
					row = append(row, "")
				}
			}
		}
		var base float64
		var notes []string
		rounds := 0
		for i, b := range brokers {
			c := cells[[2]string{cs, b}]
			if c == nil {
				row = append(row, "—")
				if i > 0 {
					row = append(row, "")
				}
				continue
			}
			if row[1] == "" {
				row[1] = c.runs[0].Unit
			}
			rounds = max(rounds, len(c.runs))
			v := c.med(func(r *Result) float64 { return r.BrokerUSPer })
			row = append(row, fmt.Sprintf("%.1f", v))
			if i == 0 {
				base = v
			} else if base > 0 && v > 0 {
				row = append(row, fmt.Sprintf("%.2f", v/base))
			} else {
				row = append(row, "")
			}
		}
		for _, b := range brokers {
			c := cells[[2]string{cs, b}]
			if c == nil {
				row = append(row, "—", "—", "—", "—")
				continue
			}
			lost, exp := c.lost()
			ls := fmt.Sprintf("%d", lost)
			if lost > 0 {
				ls = fmt.Sprintf("**%d of %d**", lost, exp)
			}
			row = append(row, ls)
			row = append(row, fmt.Sprintf("%.1f", c.med(func(r *Result) float64 { return float64(r.BrokerPeakKiB) / 1024 })))
			p50 := c.med(func(r *Result) float64 { return r.LatP50us })
			p99 := c.med(func(r *Result) float64 { return r.LatP99us })
			if p50 > 0 {
				row = append(row, fmt.Sprintf("%.0f / %.0f", p50, p99))
			} else {
				row = append(row, "")
			}
			tool := c.med(func(r *Result) float64 { return r.ToolUSPer })
			brk := c.med(func(r *Result) float64 { return r.BrokerUSPer })
			ts := fmt.Sprintf("%.1f", tool)
			if brk > 0 {
				ts += fmt.Sprintf(" (%.0f%%)", 100*tool/brk)
			}
			row = append(row, ts)
			var dups, reord uint64
			for _, r := range c.runs {
				dups += r.Dups
				reord += r.Reorders
				if r.Error != "" {
					notes = append(notes, fmt.Sprintf("%s round %d: %s", b, r.Round, r.Error))
				}
				if r.Queued != nil && *r.Queued < int64(r.Expected) {
					notes = append(notes, fmt.Sprintf("%s round %d: %s", b, r.Round, r.Notes))
				}
			}
			if dups > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d duplicates", b, dups))
			}
			if reord > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d out of order", b, reord))
			}
		}
		row = append(row, fmt.Sprint(rounds), strings.Join(slices.Compact(notes), "; "))
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}
}
