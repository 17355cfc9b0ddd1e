package hub_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/hub"
)

func TestObserveNamesEveryCall(t *testing.T) {
	_, srv := startSim(t)
	var mu sync.Mutex
	var got []hub.Call
	c, err := hub.New(hub.Config{URL: srv.URL, User: svcUser, Password: svcPassword,
		Observe: func(call hub.Call, took time.Duration) {
			if took <= 0 {
				t.Errorf("Observe(%s) took %v, want more than 0", call, took)
			}
			mu.Lock()
			got = append(got, call)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	_ = c.Ping(ctx)
	_, _ = c.User(ctx, "admin")
	_, _ = c.User(ctx, "nobody") // an answer that is not found is still a call
	_ = c.SetPassword(ctx, "alice", "Alice-new-pass-1")
	_, _ = c.Settings(ctx)
	_, _ = c.User(ctx, "..") // refused without asking the hub: not a call
	want := []hub.Call{hub.CallPing, hub.CallUser, hub.CallUser, hub.CallSetPassword,
		hub.CallSettings}
	if !slices.Equal(got, want) {
		t.Errorf("observed calls = %q, want %q", got, want)
	}
}
