// Command loadbench measures the password_reset module over HTTP: what it
// costs the requests it passes through, how many reset requests it accepts
// per second, how fast a reset completes, how much memory it holds, and
// whether the time of a reset request tells who exists. It prints a
// Markdown report of every figure against its goal.
//
// It builds cmd/caddy once and runs it as child processes: plain Caddy
// with reverse_proxy ("plain"), and the same binary with password_reset in
// front of the same reverse_proxy ("module"). The upstream, the stand-in
// hub and an SMTP sink that counts and drops mail run inside loadbench.
// Everything listens on 127.0.0.1. Where two sides are compared, they run
// at the same time and are loaded in alternating rounds, so that noise
// from other work on the machine falls on both.
//
// Usage, from the repository's root:
//
//	go run ./cmd/loadbench [-phases passthrough,forgot,redeem,oracle,memory] [flags]
//
// The phase "serve" starts the two sides and the in-process servers and
// waits for Ctrl+C, for another load generator such as wrk.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	phases      string
	caddy       string
	keep        bool
	rounds      int
	round       time.Duration
	passRounds  int
	passRound   time.Duration
	conns       int
	forgotConns string
	redeemConns string
	redeemSeed  int
	tokens      int
	addresses   int
	busyConns   int
}

func main() {
	var o options
	flag.StringVar(&o.phases, "phases", "passthrough,forgot,redeem,oracle,memory",
		"comma-separated phases to run")
	flag.StringVar(&o.caddy, "caddy", "", "Caddy binary with the module (default: build ./cmd/caddy)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, stores)")
	flag.IntVar(&o.rounds, "rounds", 6, "rounds per side for throughput and latency")
	flag.DurationVar(&o.round, "round", 5*time.Second, "length of one round")
	flag.IntVar(&o.passRounds, "pass-rounds", 20, "rounds per side for passthrough")
	flag.DurationVar(&o.passRound, "pass-round", 2*time.Second, "length of one passthrough round")
	flag.IntVar(&o.conns, "conns", 8, "connections for passthrough load")
	flag.StringVar(&o.forgotConns, "forgot-conns", "2,4,8,16",
		"connection counts for the forgot load, comma-separated")
	flag.StringVar(&o.redeemConns, "redeem-conns", "1,4,8",
		"connection counts for the redemption load, comma-separated")
	flag.IntVar(&o.redeemSeed, "redeem-tokens", 90000, "tokens seeded for redemption")
	flag.IntVar(&o.tokens, "tokens", 100000, "live tokens for the memory phase")
	flag.IntVar(&o.addresses, "addresses", 1000000, "client addresses for the limiter")
	flag.IntVar(&o.busyConns, "busy-conns", 4, "connections of background load in the oracle phase")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("loadbench: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := setup(o)
	if err != nil {
		log.Fatal(err)
	}
	err = b.run(ctx)
	b.close()
	if err != nil {
		log.Fatal(err)
	}
	b.rep.print(os.Stdout, o, machine())
}

// run runs the phases asked for, in order.
func (b *bench) run(ctx context.Context) error {
	phases := map[string]func(context.Context) error{
		"passthrough": b.passthrough,
		"forgot":      b.forgot,
		"redeem":      b.redeem,
		"oracle":      b.oracle,
		"memory":      b.memory,
		"serve":       b.serve,
	}
	for _, name := range strings.Split(b.o.phases, ",") {
		f, ok := phases[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown phase %q", name)
		}
		log.Printf("phase %s (load average %s)", name, loadavg())
		b.rep.loads = append(b.rep.loads, fmt.Sprintf("%s: %s", name, loadavg()))
		if err := f(ctx); err != nil {
			return fmt.Errorf("phase %s: %w", name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// machine describes what the figures were measured on.
func machine() string {
	model := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s CPUs (%s), %s, %s/%s", strconv.Itoa(runtime.NumCPU()), model,
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// loadavg returns the machine's load averages over 1, 5 and 15 minutes.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// parseInts reads a comma-separated list of positive numbers.
func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}
