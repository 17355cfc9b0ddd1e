package caddymodule

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/store"
)

// The module's benchmarks call ServeHTTP directly, without Caddy's server
// around it, so they show the handler's own cost; cmd/loadbench measures
// it over HTTP.

// benchWriter is a ResponseWriter that keeps nothing but its headers, so
// that a benchmark measures the handler rather than a recorder.
type benchWriter struct {
	hdr    http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.hdr }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }

var nextNoop = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// BenchmarkPassthrough is the module's whole cost for a request it hands
// on: routing only.
func BenchmarkPassthrough(b *testing.B) {
	h := new(Handler)
	for _, path := range []string{
		"/api/hosts?from=bench",
		"/index.php/settings/preferences",
		"/api/user/admin/password-policy", // has "password": the slower way out
	} {
		b.Run(path, func(b *testing.B) {
			r, _ := http.NewRequest(http.MethodGet, "http://hub.example"+path, nil)
			w := &benchWriter{hdr: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				if err := h.ServeHTTP(w, r, nextNoop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGuarded is the routing decision alone, for API spellings too.
func BenchmarkGuarded(b *testing.B) {
	for _, path := range []string{
		"/api/hosts",
		"/api/auth/password/forgot/admin",
		"//API/auth/./password/reset/x",
	} {
		b.Run(path, func(b *testing.B) {
			r, _ := http.NewRequest(http.MethodGet, "http://hub.example"+path, nil)
			b.ReportAllocs()
			for b.Loop() {
				guarded(r)
			}
		})
	}
}

// benchHandler returns a started handler on a fresh store, with the
// per-address limit raised out of the way.
func benchHandler(b *testing.B) *Handler {
	b.Helper()
	sh, err := openShared(b.TempDir(), tokenKeys{}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sh.Destruct() })
	var l Limits
	l.applyDefaults()
	l.ForgotPerAddress = Rate{1 << 30, caddy.Duration(time.Second)}
	h := &Handler{Limits: l, logger: zap.NewNop(), audit: zap.NewNop(),
		ready: make(chan struct{}), shared: sh, limits: newLimiters(l)}
	close(h.ready)
	return h
}

// BenchmarkForgot is an accepted reset request: limiter, name check and
// a synced outbox write. The worker is not running, so jobs only pile up.
func BenchmarkForgot(b *testing.B) {
	h := benchHandler(b)
	r, _ := http.NewRequest(http.MethodPost, "http://hub.example"+apiPrefix+"forgot/nobody", nil)
	w := &benchWriter{hdr: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, nextNoop)
		if w.status != http.StatusOK {
			b.Fatalf("status %d, want 200", w.status)
		}
	}
}

// BenchmarkForgotParallel is many reset requests at once: their synced
// writes share Badger's commits.
func BenchmarkForgotParallel(b *testing.B) {
	h := benchHandler(b)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, _ := http.NewRequest(http.MethodPost,
			"http://hub.example"+apiPrefix+"forgot/nobody", nil)
		w := &benchWriter{hdr: http.Header{}}
		for pb.Next() {
			_ = h.ServeHTTP(w, r, nextNoop)
			if w.status != http.StatusOK {
				b.Errorf("status %d, want 200", w.status)
				return
			}
		}
	})
}

// BenchmarkInvalidateUnknownToken is a guessed token: parsed, digested,
// looked up and refused, with the failure counted against the address.
func BenchmarkInvalidateUnknownToken(b *testing.B) {
	h := benchHandler(b)
	h.limits.failures = newLimiters(Limits{
		ForgotPerAddress:   Rate{1, caddy.Duration(time.Second)},
		FailuresPerAddress: Rate{1 << 30, caddy.Duration(time.Second)},
		TrackedAddresses:   10,
	}).failures
	tok, err := store.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodDelete,
		"http://hub.example"+apiPrefix+"reset/"+tok.Reveal(), nil)
	w := &benchWriter{hdr: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, nextNoop)
		if w.status != http.StatusUnprocessableEntity {
			b.Fatalf("status %d, want 422", w.status)
		}
	}
}

func BenchmarkParseToken(b *testing.B) {
	tok, err := store.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	seg := tok.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseToken(seg); !ok {
			b.Fatal("parseToken refused a token")
		}
	}
}

func BenchmarkValidUsername(b *testing.B) {
	names := make([]string, 64)
	for i := range names {
		names[i] = "user-" + strconv.Itoa(i) + "@example.test"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		validUsername(names[i%len(names)])
		i++
	}
}
