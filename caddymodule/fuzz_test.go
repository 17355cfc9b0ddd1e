package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/mailer"
	"github.com/mpgate/password-reset/internal/worker"
)

func FuzzCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"hub_url https://127.0.0.1\nhub_user u\nhub_password p\npublic_url https://x\n" +
			"smtp {\nserver a:25\nfrom a@b\ntls none\n}",
		"token_ttl 48h\nmail_retry 5s 10m 24h",
		"limits {\nforgot_per_address 5 10m\nmails_per_user 1 2m 5 1h\n}",
		"hub_tls_insecure\nsmtp {\n}\n}", "{", "limits {\nmails_per_user 1\n}",
		"token_ttl \"\"", "smtp {\nsmtp {\n}\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		// Caddy's NewTestDispenser exits the process on input it cannot
		// tokenize (an odd heredoc, say); Caddy refuses such a file before
		// any module sees it, so it is no input for ours
		tokens, err := caddyfile.Tokenize([]byte("password_reset {\n"+body+"\n}"), "Caddyfile")
		if err != nil {
			return
		}
		d := caddyfile.NewDispenser(tokens)
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(d); err != nil {
			return
		}
		// whatever parses must not break the defaults or the checks
		h.applyDefaults()
		_ = h.check()
	})
}

// fuzzHandler is a provisioned handler without Caddy around it; its hub is
// an address where nothing listens, so a call to it fails fast.
func fuzzHandler(t testing.TB) *Handler {
	hc, err := hub.New(hub.Config{URL: "http://127.0.0.1:1", User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("https://hub.example.com")
	h := &Handler{logger: zap.NewNop(), audit: zap.NewNop(), hub: hc, Storage: t.TempDir(),
		ready: make(chan struct{}), stopped: new(atomic.Bool)}
	h.applyDefaults()
	mail, err := mailer.New(mailer.Config{Server: "127.0.0.1:1", From: "a@example.test",
		TLS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	h.deps = &worker.Deps{Hub: hc, Mail: mail, TTL: time.Hour,
		Links:  worker.Links{Base: base, PagePath: pagePrefix},
		Retry:  worker.Backoff{First: time.Hour, Max: time.Hour, GiveUp: time.Hour},
		Logger: zap.NewNop(), Audit: zap.NewNop()}
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.stop() })
	return h
}

func FuzzRequestPath(f *testing.F) {
	for _, seed := range []string{
		"/api/auth/password/forgot/admin", "/api/auth/password/reset/v1twknmrLWos",
		"/api/auth/password/reset/" + strings.Repeat("A", 43), "//api/auth/password/",
		"/api/auth/x/../password/forgot/a", "/API/AUTH/PASSWORD/", "/password-reset/",
		"/password-reset/style.css", "/api/auth/password%2Freset/x", "/other", "/%2e%2e/",
	} {
		f.Add("POST", seed, `{"password": "x"}`)
		f.Add("DELETE", seed, "")
		f.Add("GET", seed, "")
	}
	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, method, rawPath, body string) {
		u, err := url.ParseRequestURI(rawPath)
		if err != nil || (method != "GET" && method != "POST" && method != "DELETE") {
			return
		}
		r := httptest.NewRequest(method, "http://x/", strings.NewReader(body))
		r.URL = u
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		passed := false
		next := nextFunc(func(http.ResponseWriter, *http.Request) error {
			passed = true
			return nil
		})
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Fatalf("ServeHTTP(%s %q) = %v", method, rawPath, err)
		}
		if passed && guarded(r) {
			t.Fatalf("%s %q went to the next handler", method, rawPath)
		}
		if !passed && w.Code >= 500 {
			t.Fatalf("%s %q = %d, want no 5xx", method, rawPath, w.Code)
		}
	})
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

func FuzzPasswordBody(f *testing.F) {
	for _, seed := range []string{
		`{"password": "N3w-pass-word"}`, `{"password": null}`, `{"password": "a", "password": "b"}`,
		`{"x": [1, {"y": 2}], "password": "p"}`, `[]`, `{}`, `"s"`, `{"password": "\u0000"}`,
		"{\"password\": \"\xff\"}", `{"password": "a"} {}`, `{"password": 1}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		p, err := readPassword(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		// what is accepted is exactly what a plain JSON decoder reads
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("readPassword(%q) accepted a body json.Unmarshal refuses: %v", body, err)
		}
		if s, ok := m["password"].(string); !ok || s != p.Reveal() {
			t.Fatalf("readPassword(%q) = %q, json.Unmarshal reads %q", body, p.Reveal(), s)
		}
		if !utf8.ValidString(p.Reveal()) {
			t.Fatalf("readPassword(%q) accepted a password that is not UTF-8", body)
		}
	})
}
