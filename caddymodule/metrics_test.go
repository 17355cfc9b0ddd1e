package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// watchedClient is the client address of the watched flow, passed on by a
// trusted proxy, so that it cannot be mistaken for any other address.
const watchedClient = "192.0.2.77"

// The passwords of the watched flow: one the hub refuses, one it takes.
const (
	watchedWeak = "weakling"
	watchedGood = "N3w-pass-word"
)

// watchedLimits fit the watched flow: its six requests and three failures
// are allowed, one more of each is throttled.
const watchedLimits = "limits {\n forgot_per_address 6 10m\n failures_per_address 3 1m\n }"

// newWatchedStack is a stack that serves /metrics and believes the
// X-Forwarded-For of its test client.
func newWatchedStack(t *testing.T, globalExtra string) *stack {
	t.Helper()
	s := newStack(t)
	s.siteExtra = "metrics /metrics"
	s.globalExtra = "servers {\n trusted_proxies static 127.0.0.1/8\n }\n" + globalExtra
	s.load(watchedLimits)
	return s
}

// from sends a request from watchedClient and checks its status.
func (s *stack) from(method, path, body string, status int) string {
	s.t.Helper()
	resp, got := s.do(method, path, body, "X-Forwarded-For", watchedClient)
	if resp.StatusCode != status {
		s.t.Fatalf("%s %s = %d %q, want %d", method, path, resp.StatusCode, got, status)
	}
	return got
}

// watchedFlow runs every decision the module makes once at least: mails
// sent and suppressed, a failed send, a refused and an accepted password,
// a page, an invalidation, bad tokens and both address limits. It returns
// the tokens it saw.
func watchedFlow(t *testing.T, s *stack) []string {
	t.Helper()
	const forgot, reset = "/api/auth/password/forgot/", "/api/auth/password/reset/"
	s.from("POST", forgot+"admin", "", 200)
	_, first := tokenOf(t, s.waitMail(1)[0])
	for _, u := range []string{"nobody", "ldapbob", "alice"} {
		s.from("POST", forgot+u, "", 200)
	}
	s.from("POST", reset+first, resetBody(watchedWeak), 422)
	s.from("POST", reset+first, resetBody(watchedGood), 200)
	s.from("POST", forgot+"admin", "", 200)
	_, second := tokenOf(t, s.waitMail(2)[1])
	s.from("GET", "/password-reset/"+second, "", 200)
	s.from("DELETE", reset+second, "", 202)
	s.from("DELETE", reset+second, "", 422)

	// carol's mail waits for the hub, then goes out
	s.hub.SetDown(true)
	s.from("POST", forgot+"carol", "", 200)
	waitUntil(t, func() bool {
		return jobAttempts(t, s.storage) > 0
	})
	s.hub.SetDown(false)
	s.waitMail(3)

	s.from("POST", forgot+"admin", "", 422)
	s.from("POST", reset+flip(second), resetBody(watchedGood), 422)
	s.from("POST", reset+second, resetBody(watchedGood), 429)
	return []string{first, second, flip(second)}
}

// scrape fetches /metrics from Caddy and parses it.
func (s *stack) scrape() map[string]*dto.MetricFamily {
	s.t.Helper()
	resp, err := s.client.Get(s.base + "/metrics")
	if err != nil {
		s.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("GET /metrics = %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of a family with exactly these
// labels (name, value pairs): a counter's or a gauge's value, a
// histogram's count; 0 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	fam := fams[name]
	if fam == nil {
		return 0
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	if len(m.GetLabel())*2 != len(labels) {
		return false
	}
	for _, l := range m.GetLabel() {
		found := false
		for i := 0; i+1 < len(labels); i += 2 {
			found = found || labels[i] == l.GetName() && labels[i+1] == l.GetValue()
		}
		if !found {
			return false
		}
	}
	return true
}

const metricPrefix = "caddy_password_reset_"

// TestMetricsCountTheFlow runs the watched flow through a Caddy with the
// metrics handler, scrapes /metrics over HTTP before and after, and checks
// what every counter gained.
func TestMetricsCountTheFlow(t *testing.T) {
	s := newWatchedStack(t, "")
	before := s.scrape()
	tokens := watchedFlow(t, s)

	type series struct {
		name   string
		labels []string
		want   float64
	}
	want := []series{
		{"requests_total", []string{"call", "forgot", "outcome", "requested"}, 6},
		{"requests_total", []string{"call", "forgot", "outcome", "throttled"}, 1},
		{"requests_total", []string{"call", "reset", "outcome", "bad_password"}, 1},
		{"requests_total", []string{"call", "reset", "outcome", "redeemed"}, 1},
		{"requests_total", []string{"call", "reset", "outcome", "bad_token"}, 1},
		{"requests_total", []string{"call", "reset", "outcome", "throttled"}, 1},
		{"requests_total", []string{"call", "invalidate", "outcome", "invalidated"}, 1},
		{"requests_total", []string{"call", "invalidate", "outcome", "bad_token"}, 1},
		{"requests_total", []string{"call", "page", "outcome", "shown"}, 1},
		{"mails_queued_total", []string{"kind", "reset"}, 6},
		{"mails_queued_total", []string{"kind", "changed"}, 1},
		{"mails_sent_total", []string{"kind", "reset"}, 3},
		{"mails_sent_total", []string{"kind", "changed"}, 1},
		{"mails_dropped_total", []string{"kind", "reset", "reason", "unknown_user"}, 1},
		{"mails_dropped_total", []string{"kind", "reset", "reason", "external"}, 1},
		{"mails_dropped_total", []string{"kind", "reset", "reason", "no_email"}, 1},
		{"tokens_total", []string{"event", "issued"}, 3},
		{"tokens_total", []string{"event", "redeemed"}, 1},
		{"tokens_total", []string{"event", "invalidated"}, 1},
		{"throttled_total", []string{"limiter", "forgot_per_address"}, 1},
		{"throttled_total", []string{"limiter", "failures_per_address"}, 1},
		{"hub_request_duration_seconds", []string{"call", "set_password"}, 2},
		{"outbox_jobs", nil, 0},
	}
	var after map[string]*dto.MetricFamily
	sent := func() float64 { return value(after, metricPrefix+"mails_sent_total", "kind", "reset") }
	// the last mail's count follows its delivery
	waitUntil(t, func() bool {
		after = s.scrape()
		return sent()-value(before, metricPrefix+"mails_sent_total", "kind", "reset") >= 3
	})
	for _, w := range want {
		name := metricPrefix + w.name
		got := value(after, name, w.labels...) - value(before, name, w.labels...)
		if w.name == "outbox_jobs" {
			got = value(after, name)
		}
		if got != w.want {
			t.Errorf("%s%v gained %v, want %v", name, w.labels, got, w.want)
		}
	}
	// carol's look-ups failed at least once; every look-up was timed
	failed := metricPrefix + "mails_failed_total"
	if got := value(after, failed, "kind", "reset", "reason", "hub_unavailable") -
		value(before, failed, "kind", "reset", "reason", "hub_unavailable"); got < 1 {
		t.Errorf("%s{hub_unavailable} gained %v, want at least 1", failed, got)
	}
	lookups := metricPrefix + "hub_request_duration_seconds"
	if got := value(after, lookups, "call", "user_lookup") -
		value(before, lookups, "call", "user_lookup"); got < 8 {
		t.Errorf("%s{user_lookup} gained %v, want at least 8", lookups, got)
	}
	checkLabels(t, after, append(tokens, "admin", "ldapbob", "alice", "nobody", "carol",
		watchedClient))
}

// checkLabels fails when a label value of the module's metrics holds any of
// the words, or when a family of the module has no help.
func checkLabels(t *testing.T, fams map[string]*dto.MetricFamily, words []string) {
	t.Helper()
	n := 0
	for name, fam := range fams {
		if !strings.HasPrefix(name, metricPrefix) {
			continue
		}
		n++
		if fam.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, w := range words {
					if strings.Contains(l.GetValue(), w) {
						t.Errorf("%s{%s=%q} holds %q", name, l.GetName(), l.GetValue(), w)
					}
				}
			}
		}
	}
	if n < 9 {
		t.Errorf("found %d families named %s*, want 9", n, metricPrefix)
	}
}

// TestMetricsSurviveReloads reloads the config, with one and with two
// handlers, and scrapes after each load: no duplicate registration, and the
// counts carry on.
func TestMetricsSurviveReloads(t *testing.T) {
	s := newWatchedStack(t, "")
	s.from("POST", "/api/auth/password/forgot/nobody", "", 200)
	name := metricPrefix + "requests_total"
	labels := []string{"call", "forgot", "outcome", "requested"}
	last := value(s.scrape(), name, labels...)
	if last < 1 {
		t.Fatalf("%s%v = %v before the reloads, want at least 1", name, labels, last)
	}
	// a second site on another port with a handler of the same storage
	port := s.base[strings.LastIndex(s.base, ":")+1:]
	other := freeAddr(t)
	otherPort := other[strings.LastIndex(other, ":")+1:]
	for i := range 4 {
		text := s.caddyfile(watchedLimits)
		if i%2 == 1 {
			site := text[strings.Index(text, "http://:"):]
			text += strings.Replace(site, "http://:"+port, "http://:"+otherPort, 1)
		}
		if err := loadCaddyfile(text); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		s.client.CloseIdleConnections()
		s.from("POST", "/api/auth/password/forgot/nobody", "", 200)
		got := value(s.scrape(), name, labels...)
		if got != last+1 {
			t.Fatalf("after reload %d %s%v = %v, want %v", i+1, name, labels, got, last+1)
		}
		last = got
	}
}

// TestMetricsExpiryAndOutboxAge moves the module's clock: an expired token
// presented is counted, and the outbox's age is that of its oldest request.
func TestMetricsExpiryAndOutboxAge(t *testing.T) {
	c := fakeClock(t, time.Now())
	s := newWatchedStack(t, "")
	before := s.scrape()
	s.from("POST", "/api/auth/password/forgot/admin", "", 200)
	_, token := tokenOf(t, s.waitMail(1)[0])
	c.advance(2 * time.Hour) // past the stack's token_ttl
	s.from("POST", "/api/auth/password/reset/"+token, resetBody(watchedGood), 422)

	s.hub.SetDown(true)
	s.from("POST", "/api/auth/password/forgot/carol", "", 200)
	c.advance(10 * time.Minute)
	after := s.scrape()
	expired := metricPrefix + "tokens_total"
	if got := value(after, expired, "event", "expired") -
		value(before, expired, "event", "expired"); got != 1 {
		t.Errorf("%s{expired} gained %v, want 1", expired, got)
	}
	if got := value(after, metricPrefix+"outbox_jobs"); got != 1 {
		t.Errorf("outbox_jobs = %v while the hub is down, want 1", got)
	}
	if got := value(after, metricPrefix+"outbox_oldest_age_seconds"); got != 600 {
		t.Errorf("outbox_oldest_age_seconds = %v, want 600", got)
	}
	s.hub.SetDown(false)
}
