package worker

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/store"
)

// notes is an Observer that writes down what it is told.
type notes struct {
	mu  sync.Mutex
	got []string
}

func (n *notes) add(s string) {
	n.mu.Lock()
	n.got = append(n.got, s)
	n.mu.Unlock()
}

func (n *notes) Sent(kind string)               { n.add("sent " + kind) }
func (n *notes) Failed(kind, reason string)     { n.add("failed " + kind + " " + reason) }
func (n *notes) Suppressed(kind, reason string) { n.add("suppressed " + kind + " " + reason) }
func (n *notes) Issued()                        { n.add("issued") }
func (n *notes) Postponed()                     { n.add("postponed") }
func (n *notes) list() []string                 { return slices.Sorted(slices.Values(n.got)) }

func TestObserverHearsEveryEnd(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		user  string
		kind  string
		want  []string
	}{
		{"a mail sent", nil, "admin", "", []string{"issued", "sent reset"}},
		{"a notice sent", nil, "admin", store.KindChanged, []string{"sent changed"}},
		{"an unknown user", nil, "nobody", "", []string{"suppressed reset unknown_user"}},
		{"an external user", nil, "ldap", "", []string{"suppressed reset external"}},
		{"a user without email", nil, "nomail", "", []string{"suppressed reset no_email"}},
		{"a spent budget", func(f *fixture) {
			f.deps.Budgets = []store.Budget{{Events: 1, Per: time.Hour}}
			_ = f.st.MailSent("admin", f.now, f.deps.Budgets)
		}, "admin", "", []string{"suppressed reset budget"}},
		{"a failed send", func(f *fixture) { f.mail.err = errors.New("smtp down") },
			"admin", "", []string{"failed reset smtp_failed", "issued"}},
		{"a hub that is down", func(f *fixture) { f.dir.err = hub.ErrUnavailable },
			"admin", store.KindChanged, []string{"failed changed hub_unavailable"}},
		{"the global cap", func(f *fixture) {
			f.deps.MailsPerMinute = 1
			f.w.globalWait(f.deps) // spend the one mail of this minute
		}, "admin", "", []string{"postponed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			n := &notes{}
			f.deps.Observer = n
			if tt.setup != nil {
				tt.setup(f)
			}
			id, _ := store.NewJobID()
			job := store.Job{ID: id, Kind: tt.kind, User: tt.user, RequestedAt: f.now, NextAt: f.now}
			if err := f.st.Enqueue(job); err != nil {
				t.Fatal(err)
			}
			f.w.drain()
			if got := n.list(); !slices.Equal(got, tt.want) {
				t.Errorf("observer heard %q, want %q", got, tt.want)
			}
		})
	}
}

func TestObserverHearsGivingUp(t *testing.T) {
	f := newFixture(t)
	n := &notes{}
	f.deps.Observer = n
	f.dir.err = hub.ErrUnavailable
	f.enqueue(t, "admin")
	for i := 0; i < 20 && f.depth(t) > 0; i++ {
		f.w.drain()
		if jobs, _ := f.st.Due(f.now.Add(24*time.Hour), 1); len(jobs) > 0 {
			f.now = jobs[0].NextAt
		}
	}
	got := n.list()
	if len(got) < 2 || got[len(got)-1] != "suppressed reset gave_up" {
		t.Fatalf("observer heard %q, want failures and then gave_up", got)
	}
	for _, g := range got[:len(got)-1] {
		if g != "failed reset hub_unavailable" {
			t.Errorf("observer heard %q before giving up, want only hub_unavailable failures", g)
		}
	}
}
