package hub_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/hubsim"
)

const (
	svcUser     = "mpgate"
	svcPassword = "svc-Secret-42"
	// marker is put in answers of custom handlers; errors must never show it
	marker = "BODY-MARKER-7f3a"
)

// testData is the stand-in's content for these tests.
func testData() hubsim.Data {
	return hubsim.Data{
		Users: []hubsim.User{
			{ID: svcUser, Password: svcPassword, Roles: []string{"admin"}},
			{
				ID: "admin", Password: "Adm1n-start-pass", Email: "admin@example.test",
				Name: "Hub Administrator", TimeZone: "Europe/Oslo", Roles: []string{"admin"},
				TwoFactorEnabled: true,
			},
			{ID: "alice", Password: "Alice-start-1", Roles: []string{"reader"}},
			{ID: "ldapbob", Email: "bob@example.test", External: true},
			{ID: "settings", Password: "Settings-user-1"},
		},
		Settings: hubsim.Settings{MinPasswordLength: 10, PasswordComplexity: 3,
			PasswordExpirationAfterResetHours: 48},
	}
}

// startSim serves a fresh stand-in over plain HTTP.
func startSim(t *testing.T) (*hubsim.Server, *httptest.Server) {
	t.Helper()
	sim := hubsim.New(testData())
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

// newClient returns a client closed at cleanup, signing in as the service
// account unless cfg names a user.
func newClient(t *testing.T, cfg hub.Config) *hub.Client {
	t.Helper()
	if cfg.User == "" {
		cfg.User, cfg.Password = svcUser, svcPassword
	}
	c, err := hub.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v, want no error", cfg.URL, err)
	}
	t.Cleanup(c.Close)
	return c
}

// checkErr fails the test when err does not wrap want (nil for success) or
// shows a secret.
func checkErr(t *testing.T, call string, err, want error, secrets ...string) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", call, err, want)
	}
	noSecrets(t, call, err, secrets...)
}

// noSecrets fails the test when err shows one of the secrets, the service
// password or the marker of a hub answer.
func noSecrets(t *testing.T, call string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, svcPassword, marker) {
		if s == "" {
			continue
		}
		if strings.Contains(err.Error(), s) {
			t.Errorf("%s = %q, which shows the secret %q", call, err, s)
		}
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  hub.Config
		want string // start of the error; empty for success
	}{
		{"accepts an https url", hub.Config{URL: "https://127.0.0.1"}, ""},
		{"accepts a path prefix", hub.Config{URL: "http://hub.example.test/mp/"}, ""},
		{"rejects a relative url", hub.Config{URL: "/api"}, "hub url: "},
		{"rejects another scheme", hub.Config{URL: "ftp://hub"}, "hub url: "},
		{"rejects a missing host", hub.Config{URL: "https://"}, "hub url: "},
		{"rejects a broken url", hub.Config{URL: "https://u:pw-in-url@h:port"}, "hub url: "},
		{"rejects credentials in the url", hub.Config{URL: "https://u:pw-in-url@h"}, "hub url: "},
		{"rejects a query", hub.Config{URL: "https://h/?x=1"}, "hub url: "},
		{"rejects a fragment", hub.Config{URL: "https://h/#x"}, "hub url: "},
		{"rejects a missing CA file", hub.Config{URL: "https://h",
			CAFile: filepath.Join(dir, "missing.pem")}, "reading hub CA file: "},
		{"rejects a CA file without certificates", hub.Config{URL: "https://h",
			CAFile: noPEM}, "reading hub CA file: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.User, tt.cfg.Password = svcUser, svcPassword
			_, err := hub.New(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New(%q) = %v, want no error", tt.cfg.URL, err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Fatalf("New(%q) = %v, want an error starting %q", tt.cfg.URL, err, tt.want)
			}
			noSecrets(t, "New", err, "pw-in-url")
		})
	}
}

func TestUser(t *testing.T) {
	sim, srv := startSim(t)
	c := newClient(t, hub.Config{URL: srv.URL})
	admin := hub.User{
		ID: "admin", Email: "admin@example.test", Name: "Hub Administrator",
		TimeZone: "Europe/Oslo", Roles: []string{"admin"}, TwoFactorEnabled: true,
	}
	tests := []struct {
		name    string
		user    string
		want    hub.User
		wantErr error
		calls   int // requests the stand-in should see
	}{
		{"finds an existing user", "admin", admin, nil, 1},
		{"finds an external user", "ldapbob",
			hub.User{ID: "ldapbob", Email: "bob@example.test", External: true, Roles: []string{}},
			nil, 1},
		{"reports an unknown user", "nobody", hub.User{}, hub.ErrNotFound, 1},
		{"matches the name exactly", "Admin", hub.User{}, hub.ErrNotFound, 1},
		{"refuses an empty name without a call", "", hub.User{}, hub.ErrNotFound, 0},
		{"refuses a dot without a call", ".", hub.User{}, hub.ErrNotFound, 0},
		{"refuses two dots without a call", "..", hub.User{}, hub.ErrNotFound, 0},
		{"refuses invalid utf-8 without a call", "ad\xffmin", hub.User{}, hub.ErrNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sim.Calls()
			got, err := c.User(context.Background(), tt.user)
			checkErr(t, fmt.Sprintf("User(%q)", tt.user), err, tt.wantErr)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("User(%q) = %+v, want %+v", tt.user, got, tt.want)
			}
			if n := sim.Calls() - before; n != tt.calls {
				t.Errorf("User(%q) made %d hub calls, want %d", tt.user, n, tt.calls)
			}
		})
	}
}

// answering serves a hub that gives every request the same answer and
// returns its URL.
func answering(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status/100 == 3 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestUntrustedAnswers(t *testing.T) {
	big := `{"data":[{"id":"alice","name":"` + strings.Repeat("x", 1<<20) + `"}]}`
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"trusts a matching record", 200, `{"meta":{},"data":[{"id":"alice"}]}`, nil},
		{"refuses another user's record", 200, `{"data":[{"id":"admin","x":"` + marker + `"}]}`,
			hub.ErrNotFound},
		{"refuses a record differing in case", 200, `{"data":[{"id":"Alice"}]}`, hub.ErrNotFound},
		{"refuses empty data", 200, `{"meta":{},"data":[]}`, hub.ErrNotFound},
		{"refuses a missing data key", 200, `{"meta":{}}`, hub.ErrNotFound},
		{"treats 404 as unknown", 404, `{"message":"` + marker + `"}`, hub.ErrNotFound},
		{"treats 418 as unknown", 418, marker, hub.ErrNotFound},
		{"treats 500 as an outage", 500, marker, hub.ErrUnavailable},
		{"treats 503 as an outage", 503, marker, hub.ErrUnavailable},
		{"treats 429 as an outage", 429, marker, hub.ErrUnavailable},
		{"treats 403 as an outage", 403, marker, hub.ErrUnavailable},
		{"treats a redirect as an outage", 302, marker, hub.ErrUnavailable},
		{"treats malformed json as an outage", 200, `{"data":` + marker, hub.ErrUnavailable},
		{"treats a wrong type as an outage", 200, `{"data":[{"id":"alice","external":"` +
			marker + `"}]}`, hub.ErrUnavailable},
		{"treats an oversized answer as an outage", 200, big, hub.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, hub.Config{URL: answering(t, tt.status, tt.body)})
			_, err := c.User(context.Background(), "alice")
			checkErr(t, `User("alice")`, err, tt.want)
		})
	}
}

// recorder is a hub that answers 404 to everything and records the request
// targets, escaped paths, bodies and headers it was sent.
type recorder struct {
	mu      sync.Mutex
	targets []string
	paths   []string
	bodies  []string
	header  http.Header
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.targets = append(rec.targets, r.RequestURI)
	rec.paths = append(rec.paths, r.URL.EscapedPath())
	rec.bodies = append(rec.bodies, string(body))
	rec.header = r.Header.Clone()
	http.NotFound(w, r)
}

func TestPathSmuggling(t *testing.T) {
	tests := []struct {
		name string
		user string
		want string // escaped path the hub must see, after the URL's prefix
	}{
		{"keeps a parent step in the segment", "../settings", "/api/user/..%2Fsettings"},
		{"keeps a slash in the segment", "a/b", "/api/user/a%2Fb"},
		{"escapes an escaped slash again", "a%2Fb", "/api/user/a%252Fb"},
		{"keeps a question mark in the segment", "a?x", "/api/user/a%3Fx"},
		{"keeps a hash in the segment", "a#b", "/api/user/a%23b"},
		{"passes three dots as a plain name", "...", "/api/user/..."},
		{"escapes a space", "a b", "/api/user/a%20b"},
	}
	places := map[string]string{"at the root": "", "under a path prefix": "/mp"}
	for place, prefix := range places {
		for _, tt := range tests {
			t.Run(tt.name+" "+place, func(t *testing.T) {
				rec := &recorder{}
				srv := httptest.NewServer(rec)
				defer srv.Close()
				c := newClient(t, hub.Config{URL: srv.URL + prefix + "/"})
				_, err := c.User(context.Background(), tt.user)
				checkErr(t, fmt.Sprintf("User(%q)", tt.user), err, hub.ErrNotFound)
				err = c.SetPassword(context.Background(), tt.user, "New-pass-1234")
				checkErr(t, fmt.Sprintf("SetPassword(%q)", tt.user), err, hub.ErrNotFound)
				want := []string{prefix + tt.want, prefix + tt.want}
				if !reflect.DeepEqual(rec.targets, want) || !reflect.DeepEqual(rec.paths, want) {
					t.Errorf("User, SetPassword(%q) reached %q as %q, want %q",
						tt.user, rec.targets, rec.paths, want)
				}
			})
		}
	}

	// against the stand-in, which has a user called "settings"
	sim, srv := startSim(t)
	c := newClient(t, hub.Config{URL: srv.URL})
	for _, name := range []string{"../settings", "a/b", "a%2Fb", "a?x", "a#b", "%2e%2e"} {
		if u, err := c.User(context.Background(), name); !errors.Is(err, hub.ErrNotFound) {
			t.Errorf("User(%q) = %+v, %v, want %v", name, u, err, hub.ErrNotFound)
		}
		err := c.SetPassword(context.Background(), name, "Smuggled-pass-1")
		checkErr(t, fmt.Sprintf("SetPassword(%q)", name), err, hub.ErrNotFound, "Smuggled")
	}
	if n := sim.PasswordSets("settings"); n != 0 {
		t.Errorf("PasswordSets(%q) = %d, want 0", "settings", n)
	}
}

func TestRequest(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, hub.Config{URL: srv.URL})
	_ = c.SetPassword(context.Background(), "alice", `Qu"ote\-pass-1`)
	var body struct{ Password string }
	if err := json.Unmarshal([]byte(rec.bodies[0]), &body); err != nil ||
		body.Password != `Qu"ote\-pass-1` {
		t.Errorf("SetPassword sent %q, want the password as JSON", rec.bodies[0])
	}
	headers := map[string]string{
		"Content-Type":  "application/json",
		"Accept":        "application/json",
		"Authorization": "Basic bXBnYXRlOnN2Yy1TZWNyZXQtNDI=", // mpgate:svc-Secret-42
	}
	for name, want := range headers {
		if got := rec.header.Get(name); got != want {
			t.Errorf("SetPassword sent %s: %q, want %q", name, got, want)
		}
	}
}

func TestSetPassword(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		password string
		want     error
		sets     int // passwords the stand-in should have set
	}{
		{"sets a strong password", "alice", "Strong-pass-42", nil, 1},
		{"sets a password with three classes", "alice", "long enough 1A", nil, 1},
		{"rejects a short password", "alice", "Sh0rt-pw", hub.ErrRejected, 0},
		{"rejects a simple password", "alice", "onlylowercaseletters", hub.ErrRejected, 0},
		{"refuses an external user", "ldapbob", "Strong-pass-42", hub.ErrRejected, 0},
		{"reports an unknown user", "nobody", "Strong-pass-42", hub.ErrNotFound, 0},
		{"refuses an empty password without a call", "alice", "", hub.ErrRejected, 0},
		{"refuses invalid utf-8 without a call", "alice", "Strong-pass-\xff", hub.ErrRejected, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, srv := startSim(t)
			c := newClient(t, hub.Config{URL: srv.URL})
			err := c.SetPassword(context.Background(), tt.user, tt.password)
			call := fmt.Sprintf("SetPassword(%q, %q)", tt.user, tt.password)
			checkErr(t, call, err, tt.want, tt.password)
			if got := sim.PasswordSets(tt.user); got != tt.sets {
				t.Errorf("PasswordSets(%q) = %d, want %d", tt.user, got, tt.sets)
			}
			if got := sim.CheckPassword(tt.user, tt.password); got != (tt.sets == 1) {
				t.Errorf("CheckPassword(%q, %q) = %t, want %t", tt.user, tt.password, got,
					tt.sets == 1)
			}
		})
	}
}

func TestNewPasswordSignsIn(t *testing.T) {
	_, srv := startSim(t)
	c := newClient(t, hub.Config{URL: srv.URL})
	const fresh = "Fresh-admin-pass-9"
	checkErr(t, "SetPassword(admin)", c.SetPassword(context.Background(), "admin", fresh), nil)
	tests := []struct {
		name     string
		password string
		want     error
	}{
		{"signs in with the new password", fresh, nil},
		{"refuses the old password", "Adm1n-start-pass", hub.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin := newClient(t, hub.Config{URL: srv.URL, User: "admin", Password: tt.password})
			checkErr(t, "Ping", admin.Ping(context.Background()), tt.want, tt.password)
		})
	}
}

func TestOutages(t *testing.T) {
	sim, srv := startSim(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// hang until the client gives up; the server notices the closed
		// connection only once the body has been read
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hanging.Close()
	tests := []struct {
		name string
		cfg  hub.Config
		down bool
	}{
		{"reports wrong credentials", hub.Config{URL: srv.URL, User: svcUser,
			Password: "wrong-pass"}, false},
		{"reports a user without the admin role", hub.Config{URL: srv.URL, User: "alice",
			Password: "Alice-start-1"}, false},
		{"reports a hub that is down", hub.Config{URL: srv.URL}, true},
		{"reports a hub that does not listen", hub.Config{URL: closed.URL}, false},
		{"reports a hub that does not answer in time", hub.Config{URL: hanging.URL,
			Timeout: 50 * time.Millisecond}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.SetDown(tt.down)
			defer sim.SetDown(false)
			c := newClient(t, tt.cfg)
			ctx := context.Background()
			_, userErr := c.User(ctx, "admin")
			checkErr(t, "User(admin)", userErr, hub.ErrUnavailable, tt.cfg.Password)
			setErr := c.SetPassword(ctx, "admin", "Secret-new-pass-1")
			checkErr(t, "SetPassword(admin)", setErr, hub.ErrUnavailable, "Secret-new-pass-1")
		})
	}
	if n := sim.PasswordSets("admin"); n != 0 {
		t.Errorf("PasswordSets(admin) = %d, want 0", n)
	}
}

func TestSettingsAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   hub.Settings
		err    error
	}{
		{"defaults a missing minimum length", 200, `{"passwordComplexity":2,"logLevel":"x"}`,
			hub.Settings{MinPasswordLength: 8, PasswordComplexity: 2}, nil},
		{"reads every key", 200, `{"minPasswordLength":12,"passwordComplexity":4,` +
			`"passwordExpirationAfterResetHours":24,"enforce2FA":true}`,
			hub.Settings{12, 4, 24, true}, nil},
		{"reports a hub without settings", 404, marker, hub.Settings{}, hub.ErrNotFound},
		{"reports an outage", 502, marker, hub.Settings{}, hub.ErrUnavailable},
		{"reports malformed json", 200, marker, hub.Settings{}, hub.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, hub.Config{URL: answering(t, tt.status, tt.body)})
			got, err := c.Settings(context.Background())
			checkErr(t, "Settings", err, tt.err)
			if got != tt.want {
				t.Errorf("Settings() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(hubsim.New(testData()))
	// the refused handshake is expected; keep it out of the test output
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "hub-ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  hub.Config
		want error
	}{
		{"trusts the given CA file", hub.Config{URL: srv.URL, CAFile: caFile}, nil},
		{"refuses an unknown certificate", hub.Config{URL: srv.URL}, hub.ErrUnavailable},
		{"skips verification when insecure", hub.Config{URL: srv.URL, Insecure: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.cfg)
			checkErr(t, "Ping", c.Ping(context.Background()), tt.want)
			got, err := c.Settings(context.Background())
			checkErr(t, "Settings", err, tt.want)
			if want := testData().Settings; tt.want == nil && got != hub.Settings(want) {
				t.Errorf("Settings() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(hubsim.New(testData()))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(t, hub.Config{URL: srv.URL})
	ctx := context.Background()
	for _, name := range []string{"admin", "nobody", "ldapbob", "nobody"} {
		_, _ = c.User(ctx, name)
	}
	_ = c.SetPassword(ctx, "alice", "short")
	_ = c.Ping(ctx)
	if n := conns.Load(); n != 1 {
		t.Errorf("six sequential calls opened %d connections, want 1", n)
	}
}
