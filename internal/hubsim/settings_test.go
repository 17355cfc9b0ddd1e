package hubsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mpgate/password-reset/internal/hubsim"
)

// SetSettings changes both the policy the stand-in reports and the one it
// enforces.
func TestSetSettings(t *testing.T) {
	s := hubsim.New(testData())
	s.SetSettings(hubsim.Settings{MinPasswordLength: 12, PasswordComplexity: 3})

	r := httptest.NewRequest("GET", "/api/settings", nil)
	r.SetBasicAuth("root", "Root-pass-1")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var got hubsim.Settings
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
		t.Fatalf("GET /api/settings = %d %q, want 200 with JSON", w.Code, w.Body)
	}
	if got.MinPasswordLength != 12 || got.PasswordComplexity != 3 {
		t.Errorf("GET /api/settings = %+v, want length 12 and complexity 3", got)
	}

	tests := []struct {
		name, password string
		want           int
	}{
		{"refuses what the old policy took", "Eleven-ch1", http.StatusUnprocessableEntity},
		{"refuses two classes", "twelvechars1", http.StatusUnprocessableEntity},
		{"accepts the new policy", "Twelve-chars1", http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/user/alice", strings.NewReader(pw(tt.password)))
			r.SetBasicAuth("root", "Root-pass-1")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("POST /api/user/alice %q = %d, want %d", tt.password, w.Code, tt.want)
			}
		})
	}

	s.SetSettings(hubsim.Settings{})
	r = httptest.NewRequest("GET", "/api/settings", nil)
	r.SetBasicAuth("root", "Root-pass-1")
	w = httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.MinPasswordLength != 8 {
		t.Errorf("settings after SetSettings(zero) = %+v, %v, want length 8", got, err)
	}
}
