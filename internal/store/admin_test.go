package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/store"
)

// enqueue writes jobs to s, failing the test on error.
func enqueue(t *testing.T, s *store.Badger, jobs ...store.Job) {
	t.Helper()
	for _, j := range jobs {
		if err := s.Enqueue(j); err != nil {
			t.Fatalf("Enqueue(%s) = %v", j.ID, err)
		}
	}
}

func TestOutboxSummary(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	sum, jobs, err := s.OutboxJobs(t0, 10)
	if err != nil || sum != (store.OutboxSummary{}) || len(jobs) != 0 {
		t.Fatalf("OutboxJobs() of an empty outbox = %+v, %v, %v, want zero", sum, jobs, err)
	}
	enqueue(t, s,
		store.Job{ID: "late", User: "carol", RequestedAt: t0.Add(-time.Hour), NextAt: t0.Add(time.Minute)},
		store.Job{ID: "due", User: "admin", RequestedAt: t0.Add(-time.Minute), NextAt: t0.Add(-time.Second)},
		store.Job{ID: "now", User: "alice", Kind: store.KindChanged, RequestedAt: t0, NextAt: t0},
	)
	sum, jobs, err = s.OutboxJobs(t0, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := store.OutboxSummary{Depth: 3, Due: 2, Oldest: t0.Add(-time.Hour), NextAt: t0.Add(-time.Second)}
	if !sum.Oldest.Equal(want.Oldest) || !sum.NextAt.Equal(want.NextAt) ||
		sum.Depth != want.Depth || sum.Due != want.Due {
		t.Errorf("OutboxJobs(t0) = %+v, want %+v", sum, want)
	}
	if len(jobs) != 2 || jobs[0].ID != "due" || jobs[1].ID != "now" {
		t.Errorf("OutboxJobs(t0, 2) jobs = %+v, want due and now, earliest due first", jobs)
	}
}

func TestMakeDue(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	// more than one transaction's worth, so that the batches are tested
	const waiting = 600
	for i := range waiting {
		enqueue(t, s, store.Job{ID: fmt.Sprintf("w%03d", i), User: "u", Attempts: 3,
			RequestedAt: t0, NextAt: t0.Add(time.Duration(i+1) * time.Minute)})
	}
	enqueue(t, s, store.Job{ID: "due", User: "admin", RequestedAt: t0, NextAt: t0.Add(-time.Minute)})

	moved, err := s.MakeDue(t0)
	if err != nil || moved != waiting {
		t.Fatalf("MakeDue(t0) = %d, %v, want %d", moved, err, waiting)
	}
	due, err := s.Due(t0, 2*waiting)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != waiting+1 {
		t.Fatalf("Due(t0) after MakeDue = %d jobs, want %d", len(due), waiting+1)
	}
	for _, j := range due {
		if j.ID != "due" && (j.Attempts != 3 || !j.NextAt.Equal(t0)) {
			t.Fatalf("moved job = %+v, want attempts 3 and due at t0", j)
		}
	}
	if n, _ := s.Depth(); n != waiting+1 {
		t.Errorf("Depth() = %d, want %d: a job was lost or stored twice", n, waiting+1)
	}
	if moved, err := s.MakeDue(t0); moved != 0 || err != nil {
		t.Errorf("MakeDue(t0) again = %d, %v, want 0", moved, err)
	}
}

func TestEndUser(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, err := s.Issue("admin", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Issue("admin2", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, s,
		store.Job{ID: "a1", User: "admin", RequestedAt: t0, NextAt: t0},
		store.Job{ID: "a2", User: "admin", RequestedAt: t0.Add(time.Second), NextAt: t0},
		store.Job{ID: "notice", User: "admin", Kind: store.KindChanged, RequestedAt: t0, NextAt: t0},
		store.Job{ID: "b", User: "Admin", RequestedAt: t0, NextAt: t0},
	)
	at := t0.Add(time.Minute)
	got, err := s.EndUser("admin", at)
	if err != nil || got != (store.UserEnded{Token: true, Requests: 2}) {
		t.Fatalf("EndUser(admin) = %+v, %v, want a token and 2 requests", got, err)
	}
	if _, err := s.Check(iss.Token, at); err == nil {
		t.Error("the user's token still works after EndUser")
	}
	if user, err := s.Check(other.Token, at); err != nil || user != "admin2" {
		t.Errorf("Check(another user's token) = %q, %v, want admin2", user, err)
	}
	for _, tt := range []struct {
		user string
		at   time.Time
		want bool
	}{
		{"admin", t0.Add(time.Second), true},
		{"admin", at.Add(time.Nanosecond), false},
		{"Admin", t0, false}, // names are byte-exact
	} {
		if ended, err := s.Ended(tt.user, tt.at); err != nil || ended != tt.want {
			t.Errorf("Ended(%q, %v) = %v, %v, want %v", tt.user, tt.at, ended, err, tt.want)
		}
	}
	sum, jobs, err := s.OutboxJobs(at, 10)
	if err != nil || sum.Depth != 2 || jobs[0].ID != "b" && jobs[1].ID != "b" {
		t.Errorf("outbox after EndUser(admin) = %+v, want the notice and Admin's request", jobs)
	}
	got, err = s.EndUser("admin", at)
	if err != nil || got != (store.UserEnded{}) {
		t.Errorf("EndUser(admin) again = %+v, %v, want nothing found", got, err)
	}
	if got, _ := s.EndUser("nobody", at); got != (store.UserEnded{}) {
		t.Errorf("EndUser(nobody) = %+v, want nothing found", got)
	}
}

func TestPurge(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	budgets := []store.Budget{{Events: 1, Per: 2 * time.Minute}, {Events: 5, Per: time.Hour}}
	// an expired token and a live one
	mustIssue := func(user string, ttl time.Duration) {
		if _, err := s.Issue(user, t0, ttl); err != nil {
			t.Fatal(err)
		}
	}
	mustIssue("expired", time.Minute)
	mustIssue("live", 2*time.Hour)
	// ended markers: one a waiting request still needs, one it does not,
	// one of a user without requests
	for _, u := range []string{"needed", "stale", "idle"} {
		if _, err := s.EndUser(u, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// as a worker holding a job puts it back after the marker was set
	enqueue(t, s,
		store.Job{ID: "old", User: "needed", RequestedAt: t0, NextAt: t0},
		store.Job{ID: "new", User: "stale", RequestedAt: t0.Add(time.Hour), NextAt: t0},
	)
	// budgets: one mail long ago, one recent
	if err := s.MailSent("longago", t0.Add(-30*time.Minute), budgets); err != nil {
		t.Fatal(err)
	}
	if err := s.MailSent("recent", t0.Add(59*time.Minute), budgets); err != nil {
		t.Fatal(err)
	}

	at := t0.Add(time.Hour)
	got, err := s.Purge(at, budgets)
	want := store.Purged{Tokens: 1, Ended: 2, Budgets: 1}
	if err != nil || got != want {
		t.Fatalf("Purge() = %+v, %v, want %+v", got, err, want)
	}
	if got, _ := s.Purge(at, budgets); got != (store.Purged{}) {
		t.Errorf("Purge() again = %+v, want nothing", got)
	}
	if ended, _ := s.Ended("needed", t0); !ended {
		t.Error("Purge() dropped the marker a waiting request needs")
	}
	if got, _ := s.EndUser("live", at); !got.Token {
		t.Error("Purge() dropped a live token")
	}
	if ok, _ := s.MailAllowed("recent", at, budgets); ok {
		t.Error("Purge() dropped a budget still in use")
	}
	if ok, _ := s.MailAllowed("longago", at, budgets); !ok {
		t.Error("the budget of a mail long ago still holds after Purge()")
	}
}
