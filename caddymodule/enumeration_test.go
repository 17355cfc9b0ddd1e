package caddymodule

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/hubsim"
)

// TestForgotTellsNothing sends a few hundred reset requests of each kind
// (an existing user, an unknown name, an external user, a user without an
// email address, a user over its mail budget), interleaved at random, and
// checks that the answers are identical and their times cannot be told
// apart: medians within 1 ms, and a two-sample Kolmogorov-Smirnov test
// that does not separate any kind from the unknown names at the 0.1% level.
func TestForgotTellsNothing(t *testing.T) {
	const perKind = 300
	s := newStack(t)
	users := testUsers()
	for i := range perKind {
		users.Users = append(users.Users, hubsim.User{ID: fmt.Sprintf("user%03d", i),
			Password: "User-pass-123", Email: fmt.Sprintf("user%03d@example.test", i)})
	}
	s.hub = hubsim.New(users)
	srv := httptest.NewServer(s.hub)
	t.Cleanup(srv.Close)
	s.hubURL = srv.URL
	s.load("limits {\n mails_per_user 1 1h\n mails_per_minute 100000\n " +
		"forgot_per_address 100000 1m\n }")
	s.forgot("admin", 1) // admin's budget is now spent

	kinds := []string{"unknown", "existing", "external", "no email", "over budget"}
	name := func(kind string, i int) string {
		switch kind {
		case "existing":
			return fmt.Sprintf("user%03d", i)
		case "external":
			return "ldapbob"
		case "no email":
			return "alice"
		case "over budget":
			return "admin"
		}
		return fmt.Sprintf("nobody%03d", i)
	}
	type call struct {
		kind string
		i    int
	}
	var calls []call
	for _, k := range kinds {
		for i := range perKind {
			calls = append(calls, call{k, i})
		}
	}
	rand.Shuffle(len(calls), func(i, j int) { calls[i], calls[j] = calls[j], calls[i] })
	for i := range 100 { // warm up connections and caches
		s.do("POST", "/api/auth/password/forgot/warmup"+fmt.Sprint(i), "")
	}

	times := map[string][]float64{}
	var first string
	for _, c := range calls {
		start := time.Now()
		resp, body := s.do("POST", "/api/auth/password/forgot/"+name(c.kind, c.i), "")
		elapsed := time.Since(start)
		resp.Header.Del("Date")
		answer := fmt.Sprint(resp.StatusCode, resp.Header, body)
		if first == "" {
			first = answer
		} else if answer != first {
			t.Fatalf("answer for %s = %s, want %s", c.kind, answer, first)
		}
		times[c.kind] = append(times[c.kind], float64(elapsed.Microseconds()))
	}

	base := times["unknown"]
	for _, k := range kinds[1:] {
		d := ksStatistic(base, times[k])
		crit := 1.95 * math.Sqrt(float64(len(base)+len(times[k]))/
			float64(len(base)*len(times[k])))
		diff := math.Abs(median(base) - median(times[k]))
		t.Logf("%-11s median %6.0f µs (unknown %6.0f µs), KS D = %.3f (critical %.3f)",
			k, median(times[k]), median(base), d, crit)
		if diff > 1000 {
			t.Errorf("median of %s differs from unknown names by %.0f µs, want under 1 ms",
				k, diff)
		}
		if d > crit {
			t.Errorf("KS D(%s, unknown) = %.3f, over the 0.1%% critical value %.3f", k, d, crit)
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ksStatistic returns the largest distance between the empirical
// distribution functions of a and b.
func ksStatistic(a, b []float64) float64 {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	var i, j int
	var d float64
	for i < len(a) && j < len(b) {
		x := math.Min(a[i], b[j])
		for i < len(a) && a[i] <= x {
			i++
		}
		for j < len(b) && b[j] <= x {
			j++
		}
		d = math.Max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}
