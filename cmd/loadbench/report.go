package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// report gathers the goals and the detailed tables of a run.
type report struct {
	goals    []goal
	sections []section
	loads    []string // load average at the start of each phase
}

type goal struct {
	item, want, got string
	met             bool
}

type section struct {
	title string
	lines []string
}

func (r *report) goal(item, want, got string, met bool) {
	r.goals = append(r.goals, goal{item, want, got, met})
}

func (r *report) section(title string, lines ...string) {
	r.sections = append(r.sections, section{title, lines})
}

// print writes the report as Markdown.
func (r *report) print(w io.Writer, o options, machine string) {
	fmt.Fprintf(w, "# loadbench report\n\n")
	fmt.Fprintf(w, "- machine: %s\n", machine)
	fmt.Fprintf(w, "- command: `%s`\n", strings.Join(os.Args, " "))
	fmt.Fprintf(w, "- rounds: passthrough %d of %s per side, alternating; others %d of %s\n",
		o.passRounds, o.passRound, o.rounds, o.round)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) at the start of each phase: %s\n",
		strings.Join(r.loads, "; "))
	fmt.Fprintf(w, "- finished: %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "| item | goal | measured | met |\n| --- | --- | --- | --- |\n")
	for _, g := range r.goals {
		met := "yes"
		if !g.met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.item, g.want, g.got, met)
	}
	for _, s := range r.sections {
		fmt.Fprintf(w, "\n## %s\n\n", s.title)
		for _, l := range s.lines {
			fmt.Fprintln(w, l)
		}
	}
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// mib formats bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// row formats one Markdown table row.
func row(cells ...string) string { return "| " + strings.Join(cells, " | ") + " |" }

// latencyRow is a row of a result: requests, rate, p50, p90, p99, failures.
func latencyRow(name string, r result) string {
	return row(name, fmt.Sprint(r.n), fmt.Sprintf("%.0f", r.rps()),
		ms(r.p(0.5)), ms(r.p(0.9)), ms(r.p(0.99)), fmt.Sprint(r.bad))
}

const latencyHeader = "| side | requests | per second | p50 | p90 | p99 | failed |\n" +
	"| --- | --- | --- | --- | --- | --- | --- |"
