package hub_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mpgate/password-reset/internal/hub"
)

func TestPingTellsCredentialsFromOutages(t *testing.T) {
	sim, srv := startSim(t)
	tests := []struct {
		name        string
		password    string
		down        bool
		credentials bool
	}{
		{"wrong credentials", "wrong-pass", false, true},
		{"a hub that is down", svcPassword, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.SetDown(tt.down)
			defer sim.SetDown(false)
			c := newClient(t, hub.Config{URL: srv.URL, User: svcUser, Password: tt.password})
			err := c.Ping(context.Background())
			checkErr(t, "Ping", err, hub.ErrUnavailable, tt.password)
			if got := errors.Is(err, hub.ErrCredentials); got != tt.credentials {
				t.Errorf("errors.Is(Ping() = %v, ErrCredentials) = %t, want %t", err, got,
					tt.credentials)
			}
		})
	}
}
