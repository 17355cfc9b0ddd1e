package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// request describes one request of a load; build is called once per
// request with a sequence number unique within the load.
type request func(seq int64) (*http.Request, error)

// result is what one load measured.
type result struct {
	n         int // requests answered as wanted
	bad       int // requests answered otherwise, or failed
	elapsed   time.Duration
	latencies []time.Duration // of the wanted answers, sorted
	firstBad  string
}

func (r result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// quantile returns the q-quantile of the sorted latencies.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func (r result) p(q float64) time.Duration { return quantile(r.latencies, q) }

// merge pools the results of several rounds of one side.
func merge(rs ...result) result {
	var out result
	for _, r := range rs {
		out.n += r.n
		out.bad += r.bad
		out.elapsed += r.elapsed
		out.latencies = append(out.latencies, r.latencies...)
		if out.firstBad == "" {
			out.firstBad = r.firstBad
		}
	}
	slices.Sort(out.latencies)
	return out
}

// newClient returns a client that keeps up to conns connections alive to
// one host and never follows redirects.
func newClient(conns int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// load is a closed loop: conns goroutines each send a request, wait for
// its answer and send the next, until the duration is over or limit
// requests were sent (limit 0: no limit). An answer counts when its status
// is want.
type load struct {
	client   *http.Client
	conns    int
	duration time.Duration
	limit    int64
	want     int
	build    request
	seq      *atomic.Int64 // shared across loads that must not reuse numbers
}

func (l load) run(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, l.duration)
	defer cancel()
	seq := l.seq
	if seq == nil {
		seq = new(atomic.Int64)
	}
	start := time.Now()
	per := make([]result, l.conns)
	var wg sync.WaitGroup
	for c := range l.conns {
		wg.Go(func() { per[c] = l.loop(ctx, seq, start) })
	}
	wg.Wait()
	out := merge(per...)
	out.elapsed = time.Since(start)
	return out
}

func (l load) loop(ctx context.Context, seq *atomic.Int64, start time.Time) result {
	var r result
	r.latencies = make([]time.Duration, 0, 4096)
	for ctx.Err() == nil {
		n, ok := l.next(seq)
		if !ok {
			break
		}
		req, err := l.build(n)
		if err != nil {
			r.bad++
			r.firstBad = err.Error()
			break
		}
		t := time.Now()
		status, err := l.send(req)
		d := time.Since(t)
		switch {
		case ctx.Err() != nil && err != nil:
			// cut off by the end of the load: not a failure
		case err != nil || status != l.want:
			r.bad++
			if r.firstBad == "" {
				r.firstBad = fmt.Sprintf("status %d, error %v", status, err)
			}
		default:
			r.n++
			r.latencies = append(r.latencies, d)
		}
	}
	return r
}

// next takes the next sequence number, unless the limit is reached: a
// number is never taken past the limit, so that loads sharing seq in
// chunks leave no gaps.
func (l load) next(seq *atomic.Int64) (int64, bool) {
	for {
		cur := seq.Load()
		if l.limit > 0 && cur >= l.limit {
			return 0, false
		}
		if seq.CompareAndSwap(cur, cur+1) {
			return cur + 1, true
		}
	}
}

// send does one request and reads the whole answer, so that the
// connection is reused.
func (l load) send(req *http.Request) (int, error) {
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// get returns a request builder for GET url.
func get(url string) request {
	return func(int64) (*http.Request, error) { return http.NewRequest(http.MethodGet, url, nil) }
}

// post returns a request builder of POSTs to url(seq) with a body and,
// when xff is set, an X-Forwarded-For of xff(seq).
func post(url func(int64) string, body string, xff func(int64) string) request {
	return func(seq int64) (*http.Request, error) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(http.MethodPost, url(seq), rd)
		if err != nil {
			return nil, err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if xff != nil {
			req.Header.Set("X-Forwarded-For", xff(seq))
		}
		return req, nil
	}
}
