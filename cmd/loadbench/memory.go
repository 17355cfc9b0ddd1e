package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"sync/atomic"
	"time"
)

// settle is how long the processes rest before their memory is read.
const settle = 3 * time.Second

// memConns is the connection count of the memory phase's loads.
const memConns = 32

// memGot describes the difference in resident memory for the goals table,
// with the anonymous and file-backed parts of it.
func memGot(m [2]memStat) string {
	return fmt.Sprintf("%s more (%s vs %s); RssAnon %s, RssFile %s", mib(m[1].rss-m[0].rss),
		mib(m[1].rss), mib(m[0].rss), mib(m[1].anon-m[0].anon), mib(m[1].file-m[0].file))
}

// memory reads the resident memory of plain Caddy and Caddy with the
// module: idle, holding live tokens, and after many client addresses.
func (b *bench) memory(ctx context.Context) error {
	if err := b.memoryTokens(ctx); err != nil {
		return err
	}
	return b.memoryLimiter(ctx)
}

// memPair holds the two sides of a memory measurement.
type memPair struct{ plain, module *caddyProc }

// read returns both sides' memory after they rested.
func (p memPair) read() (m [2]memStat, err error) {
	time.Sleep(settle)
	for i, c := range []*caddyProc{p.plain, p.module} {
		if m[i], err = c.memory(); err != nil {
			return m, err
		}
	}
	return m, nil
}

// idlePair starts both sides, the module with limits, warms them and
// reads their idle memory.
func (b *bench) idlePair(ctx context.Context, limits string) (p memPair, m [2]memStat,
	err error) {
	p.plain, p.module, err = b.pair(limits)
	if err != nil {
		return p, m, err
	}
	p.warm(ctx)
	if m, err = p.read(); err != nil {
		p.stop()
	}
	return p, m, err
}

func (p memPair) stop() {
	p.plain.stop()
	p.module.stop()
}

// warm sends both sides a few passthrough requests, so that idle means
// ready to serve, with connections and buffers in place.
func (p memPair) warm(ctx context.Context) {
	for _, c := range []*caddyProc{p.plain, p.module} {
		load{client: newClient(4), conns: 4, duration: 10 * time.Second, limit: 200,
			want: http.StatusOK, build: get(c.url(passthroughPath))}.run(ctx)
	}
}

// memTables gathers the figures of each state into two tables: resident
// memory with its peaks, and what it is made of.
type memTables struct{ rss, split []string }

func (t *memTables) add(what string, m [2]memStat) {
	p, q := m[0], m[1]
	t.rss = append(t.rss, row(what, mib(p.rss), mib(q.rss), mib(q.rss-p.rss), mib(p.hwm),
		mib(q.hwm)))
	t.split = append(t.split, row(what, mib(p.anon), mib(q.anon), mib(q.anon-p.anon),
		mib(p.file), mib(q.file), mib(q.file-p.file), mib(p.heap), mib(q.heap), mib(q.live)))
}

func (t *memTables) lines() []string {
	lines := append([]string{memHeader}, t.rss...)
	lines = append(lines, "", splitHeader)
	return append(lines, t.split...)
}

const memHeader = "| state | plain RSS | module RSS | module − plain | plain peak | module peak |\n" +
	"| --- | --- | --- | --- | --- | --- |"

const splitHeader = "| state | plain RssAnon | module RssAnon | module − plain " +
	"| plain RssFile | module RssFile | module − plain " +
	"| plain Go heap in use | module Go heap in use | module Go heap allocated |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

// splitNote says where the second table's figures come from.
const splitNote = "RssAnon and RssFile are from /proc/<pid>/status: anonymous memory (the Go " +
	"heap, stacks, the runtime) and pages of mapped files (the binary, Badger's tables and " +
	"logs), which the kernel can drop and read again. The Go heap is HeapInuse and " +
	"HeapAlloc from Caddy's /debug/pprof/heap?debug=1, read after the /proc figures and " +
	"without a forced collection."

// memoryTokens measures idle memory, then has the module's own worker
// issue one live token per user through forgot requests, each mailed to
// the sink, while plain Caddy passes the same number of requests through.
func (b *bench) memoryTokens(ctx context.Context) error {
	p, m, err := b.idlePair(ctx, raisedLimits)
	if err != nil {
		return err
	}
	defer p.stop()
	plain, module := p.plain, p.module
	var t memTables
	t.add("idle, after 200 requests", m)
	b.rep.goal("4. memory, idle", "≤ 25 MiB more than plain", memGot(m),
		m[1].rss-m[0].rss <= 25<<20)

	n := int64(b.o.tokens)
	mailed := b.sink.mail.Load()
	var seqPlain, seqModule atomic.Int64
	started := time.Now()
	const chunk = 10000
	for done := int64(0); done < n && ctx.Err() == nil; done += chunk {
		end := min(done+chunk, n)
		for _, i := range order(int(done / chunk)) {
			l := load{client: newClient(memConns), conns: memConns, duration: time.Hour,
				limit: end, want: http.StatusOK, seq: &seqPlain,
				build: get(plain.url(passthroughPath))}
			if i == 1 {
				l.seq, l.build = &seqModule, post(func(n int64) string {
					return module.url("/api/auth/password/forgot/" + userName(n))
				}, "", nil)
			}
			if r := l.run(ctx); r.bad > 0 {
				return fmt.Errorf("%s: %d requests failed, first: %s", []string{"plain",
					"module"}[i], r.bad, r.firstBad)
			}
		}
	}
	accepted := time.Since(started)
	log.Printf("%d forgot requests accepted in %s; waiting for the worker's mail", n,
		accepted.Round(time.Second))
	last := time.Now()
	ok := waitFor(ctx, 30*time.Minute, func() bool {
		if time.Since(last) > 15*time.Second {
			log.Printf("%d of %d mailed", b.sink.mail.Load()-mailed, n)
			last = time.Now()
		}
		return b.sink.mail.Load()-mailed >= n
	})
	sent := b.sink.mail.Load() - mailed
	drained := time.Since(started)
	if !ok {
		return fmt.Errorf("only %d of %d tokens mailed in time", sent, n)
	}
	if m, err = p.read(); err != nil {
		return err
	}
	b.rep.goal(fmt.Sprintf("4. memory, %d live tokens", n), "≤ 64 MiB more than plain",
		memGot(m), m[1].rss-m[0].rss <= 64<<20)
	t.add(fmt.Sprintf("%d live tokens, each mailed", n), m)
	lines := append(t.lines(), "", splitNote, "",
		fmt.Sprintf("The %d forgot requests (user1 to user%d, all existing users with an "+
			"email address) were accepted in %s; the module's worker had looked each user "+
			"up, issued its token and mailed it %s after the first request (%.0f mails/s, "+
			"one at a time). Plain Caddy passed %d requests through in alternating chunks.",
			n, n, accepted.Round(time.Second), drained.Round(time.Second),
			float64(sent)/drained.Seconds(), seqPlain.Load()))
	if b.o.keep {
		// the profile of what the tokens left behind, for go tool pprof
		path, err := module.saveHeap("heap-tokens.pprof")
		if err != nil {
			return err
		}
		lines = append(lines, "", fmt.Sprintf("The module's heap profile at this point: "+
			"`go tool pprof -sample_index=inuse_space %s`.", path))
	}
	b.rep.section("Memory: idle and live tokens", lines...)
	return nil
}

// limiterName is a username the module refuses as malformed, after the
// per-address limiter has counted the request: it reaches the limiter
// without writing a job, so a million addresses take minutes, not hours.
const limiterName = "%01"

// limiterAddress is the n-th client address: a /64 network of its own in
// the IPv6 documentation range, so that each one is a new limiter key.
func limiterAddress(n int64) string {
	return fmt.Sprintf("2001:db8:%x:%x::1", (n>>16)&0xffff, n&0xffff)
}

// memoryLimiter sends forgot requests from a new client address each
// (through X-Forwarded-For from the trusted loopback proxy) to both
// sides, with the module's default limits and address cap, and reads
// their memory every tenth of the way.
func (b *bench) memoryLimiter(ctx context.Context) error {
	p, m, err := b.idlePair(ctx, defaultLimits)
	if err != nil {
		return err
	}
	defer p.stop()
	plain, module := p.plain, p.module
	var t memTables
	t.add("idle, after 200 requests", m)
	idle := m[1].rss - m[0].rss
	n := int64(b.o.addresses)
	step := max(n/10, 1)
	path := "/api/auth/password/forgot/" + limiterName
	var seqPlain, seqModule atomic.Int64
	var atCap int64 // module − plain when the limiter first holds its cap
	for done := int64(0); done < n && ctx.Err() == nil; done += step {
		end := min(done+step, n)
		for _, i := range order(int(done / step)) {
			c, seq, want := plain, &seqPlain, http.StatusOK
			if i == 1 {
				c, seq, want = module, &seqModule, http.StatusUnprocessableEntity
			}
			l := load{client: newClient(memConns), conns: memConns, duration: time.Hour,
				limit: end, want: want, seq: seq,
				build: post(func(int64) string { return c.url(path) }, "", limiterAddress)}
			if r := l.run(ctx); r.bad > 0 {
				return fmt.Errorf("%s: %d requests failed, first: %s", c.name, r.bad,
					r.firstBad)
			}
		}
		if m, err = p.read(); err != nil {
			return err
		}
		if atCap == 0 && end >= 100000 {
			atCap = m[1].rss - m[0].rss
		}
		log.Printf("%d addresses: plain %s, module %s", end, mib(m[0].rss), mib(m[1].rss))
		t.add(fmt.Sprintf("%d addresses", end), m)
	}
	// unbounded, the keys past the cap would cost nine times what the first
	// 100,000 did; bounded, they cost nothing but noise
	final := m[1].rss - m[0].rss
	growth, filling := final-atCap, atCap-idle
	b.rep.goal(fmt.Sprintf("4. memory, %d client addresses", n),
		"limiter bounded by its cap (100,000 addresses)",
		fmt.Sprintf("%s more than plain at the end; the first 100,000 addresses added %s, "+
			"the next %d added %s", mib(final), mib(filling), n-100000, mib(growth)),
		n > 100000 && growth <= filling/2)
	lines := append(t.lines(), "", splitNote, "", fmt.Sprintf("Each request is POST %s "+
		"with X-Forwarded-For naming a new /64 under 2001:db8::/32; the module counts it "+
		"against that address and answers 422 for the malformed name, so no job is written. Limits are the "+
		"defaults (5 per 10 minutes per address, tracked_addresses 100000), so no key "+
		"refills and the limiter must evict to stay at its cap.", path))
	b.rep.section("Memory: the limiter after many client addresses", lines...)
	return nil
}
