package worker

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/mailer"
	"github.com/mpgate/password-reset/internal/secret"
	"github.com/mpgate/password-reset/internal/store"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// directory is a hub stand-in at the level of the Directory interface.
type directory struct {
	users map[string]hub.User
	err   error
}

func (d *directory) User(_ context.Context, name string) (hub.User, error) {
	if d.err != nil {
		return hub.User{}, d.err
	}
	u, ok := d.users[name]
	if !ok {
		return hub.User{}, hub.ErrNotFound
	}
	return u, nil
}

// outbox records the mails it is asked to send and fails while err is set.
type outbox struct {
	mu      sync.Mutex
	sent    []mailer.Reset
	notices []mailer.Changed
	err     error
}

func (o *outbox) SendChanged(_ context.Context, c mailer.Changed) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	o.notices = append(o.notices, c)
	return nil
}

func (o *outbox) SendReset(_ context.Context, r mailer.Reset) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	o.sent = append(o.sent, r)
	return nil
}

type fixture struct {
	w    *Worker
	st   *store.Badger
	dir  *directory
	mail *outbox
	deps *Deps
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: st, now: t0, mail: &outbox{}, dir: &directory{users: map[string]hub.User{
		"admin":   {ID: "admin", Email: "admin@example.test", TimeZone: "Europe/Oslo"},
		"ldap":    {ID: "ldap", Email: "ldap@example.test", External: true},
		"nomail":  {ID: "nomail"},
		"badzone": {ID: "badzone", Email: "z@example.test", TimeZone: "Mars/Olympus"},
	}}}
	base, _ := url.Parse("https://hub.example.com/mp")
	deps := &Deps{
		Hub: f.dir, Mail: f.mail, TTL: time.Hour,
		Links:  Links{Base: base, PagePath: "/password-reset/"},
		Retry:  Backoff{First: 5 * time.Second, Max: time.Minute, GiveUp: 10 * time.Minute},
		Logger: zap.NewNop(), Audit: zap.NewNop(),
	}
	f.deps = deps
	f.w = New(st, func() *Deps { return deps }, func() time.Time { return f.now })
	return f
}

func (f *fixture) enqueue(t *testing.T, user string) {
	t.Helper()
	id, _ := store.NewJobID()
	job := store.Job{ID: id, User: user, RequestedAt: f.now, NextAt: f.now}
	if err := f.st.Enqueue(job); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) depth(t *testing.T) int {
	t.Helper()
	n, err := f.st.Depth()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProcessSendsOnlyToResettableUsers(t *testing.T) {
	f := newFixture(t)
	for _, u := range []string{"admin", "ldap", "nomail", "nobody", "badzone"} {
		f.enqueue(t, u)
	}
	f.w.drain()
	if n := f.depth(t); n != 0 {
		t.Errorf("outbox depth = %d, want 0", n)
	}
	if len(f.mail.sent) != 2 {
		t.Fatalf("mails sent = %d, want 2 (admin, badzone)", len(f.mail.sent))
	}
	byUser := map[string]mailer.Reset{}
	for _, m := range f.mail.sent {
		byUser[m.Username] = m
	}
	m := byUser["admin"]
	if m.To != "admin@example.test" || m.Location.String() != "Europe/Oslo" {
		t.Errorf("mail to %q in %v, want admin@example.test in Europe/Oslo", m.To, m.Location)
	}
	if !strings.HasPrefix(m.Link, "https://hub.example.com/mp/password-reset/") ||
		!strings.HasSuffix(m.Link, m.Token) {
		t.Errorf("link = %q, want the page under the public URL with the token", m.Link)
	}
	if user, err := f.st.Check(secret.String(m.Token), f.now); err != nil || user != "admin" {
		t.Errorf("Check(mailed token) = %q, %v, want admin, nil", user, err)
	}
	if !m.Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("expiry = %v, want %v", m.Expires, t0.Add(time.Hour))
	}
	if byUser["badzone"].Location != time.UTC {
		t.Errorf("unknown zone = %v, want UTC", byUser["badzone"].Location)
	}
}

func TestFailedSendRevokesTokenAndRetries(t *testing.T) {
	f := newFixture(t)
	f.mail.err = errors.New("smtp down")
	f.enqueue(t, "admin")
	f.w.drain()
	jobs, _ := f.st.Due(f.now.Add(time.Hour), 10)
	if len(jobs) != 1 || jobs[0].Attempts != 1 || !jobs[0].NextAt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after one failure jobs = %+v, want one due at +5s", jobs)
	}

	// the worker must not retry before the backoff is over
	f.mail.err = nil
	f.now = t0.Add(4 * time.Second)
	f.w.drain()
	if len(f.mail.sent) != 0 {
		t.Fatal("retried before the backoff was over")
	}
	f.now = t0.Add(5 * time.Second)
	f.w.drain()
	if len(f.mail.sent) != 1 || f.depth(t) != 0 {
		t.Fatalf("after the backoff: sent %d, depth %d, want 1, 0", len(f.mail.sent), f.depth(t))
	}
}

func TestHubDownRetriesThenGivesUp(t *testing.T) {
	f := newFixture(t)
	f.dir.err = hub.ErrUnavailable
	f.enqueue(t, "admin")
	var waits []time.Duration
	for i := 0; i < 20 && f.depth(t) > 0; i++ {
		f.w.drain()
		jobs, _ := f.st.Due(f.now.Add(24*time.Hour), 1)
		if len(jobs) == 0 {
			break
		}
		waits = append(waits, jobs[0].NextAt.Sub(f.now))
		f.now = jobs[0].NextAt
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second,
		40 * time.Second, time.Minute}
	for i, w := range want {
		if i >= len(waits) || waits[i] != w {
			t.Fatalf("waits = %v, want them to start %v", waits, want)
		}
	}
	if f.depth(t) != 0 {
		t.Errorf("outbox depth = %d after the give-up time, want 0", f.depth(t))
	}
	if f.now.Sub(t0) > 10*time.Minute {
		t.Errorf("last try at +%v, want none after the give-up time of 10m", f.now.Sub(t0))
	}
}

func TestBadRecipientIsDropped(t *testing.T) {
	f := newFixture(t)
	f.mail.err = mailer.ErrBadRecipient
	f.enqueue(t, "admin")
	f.w.drain()
	if f.depth(t) != 0 {
		t.Errorf("outbox depth = %d, want 0: a bad address is not retried", f.depth(t))
	}
}

func TestStopWaitsAndWakeRuns(t *testing.T) {
	f := newFixture(t)
	f.w.Start()
	f.enqueue(t, "admin")
	f.w.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for f.depth(t) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	f.w.Stop()
	if len(f.mail.sent) != 1 {
		t.Errorf("mails sent = %d, want 1", len(f.mail.sent))
	}
	f.w.Stop() // a second stop is harmless
}

func TestBackoffWait(t *testing.T) {
	b := Backoff{First: time.Second, Max: 10 * time.Second}
	tests := []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second},
		{500, 10 * time.Second}}
	for _, tt := range tests {
		if got := b.Wait(tt.attempts); got != tt.want {
			t.Errorf("Wait(%d) = %v, want %v", tt.attempts, got, tt.want)
		}
	}
}

func TestChangeNotices(t *testing.T) {
	f := newFixture(t)
	for _, u := range []string{"admin", "ldap", "nomail", "nobody"} {
		id, _ := store.NewJobID()
		job := store.Job{ID: id, Kind: store.KindChanged, User: u, RequestedAt: f.now,
			ClientIP: "192.0.2.9", NextAt: f.now}
		if err := f.st.Enqueue(job); err != nil {
			t.Fatal(err)
		}
	}
	// a spent budget does not hold a notice back
	budgets := []store.Budget{{Events: 1, Per: time.Hour}}
	_ = f.st.MailSent("admin", f.now, budgets)
	f.w.deps().Budgets = budgets
	f.w.drain()
	if n := f.depth(t); n != 0 {
		t.Errorf("outbox depth = %d, want 0", n)
	}
	if len(f.mail.sent) != 0 {
		t.Errorf("%d reset mails for notices, want none", len(f.mail.sent))
	}
	if len(f.mail.notices) != 1 {
		t.Fatalf("notices = %+v, want admin's alone", f.mail.notices)
	}
	n := f.mail.notices[0]
	if n.To != "admin@example.test" || n.From != "192.0.2.9" || !n.At.Equal(f.now) ||
		n.LoginLink != "https://hub.example.com/mp/" || n.Location.String() != "Europe/Oslo" {
		t.Errorf("notice = %+v", n)
	}
}
