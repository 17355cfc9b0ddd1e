package hubsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpgate/password-reset/internal/hubsim"
)

// example is the users file shipped with cmd/hubsim.
const example = "../../cmd/hubsim/users.example.json"

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		path string
		want string // part of the error; empty for success
	}{
		{"loads the example file", example, ""},
		{"reports a missing file", filepath.Join(dir, "missing.json"), "reading users file"},
		{"reports a file that is not json", write("bad.json", "users:"), "decoding users file"},
		{"reports an unknown key", write("key.json", `{"users":[{"id":"a","pasword":"x"}]}`),
			"unknown field"},
		{"reports a user without id", write("noid.json", `{"users":[{"password":"x"}]}`),
			"has no id"},
		{"reports a repeated id", write("twice.json", `{"users":[{"id":"a"},{"id":"a"}]}`),
			"appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hubsim.Load(tt.path)
			if tt.want == "" && err != nil || tt.want != "" &&
				(err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Load(%q) = %v, want an error with %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestExampleUsers(t *testing.T) {
	d, err := hubsim.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	s := hubsim.New(d)
	tests := []struct {
		name, user, password string
		want                 bool
	}{
		{"admin signs in", "admin", "Adm1n-start-pass", true},
		{"the service account signs in", "mpgate", "svc-Secret-42", true},
		{"an external user has no password", "ldapbob", "", false},
		{"a wrong password fails", "admin", "svc-Secret-42", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.CheckPassword(tt.user, tt.password); got != tt.want {
				t.Errorf("CheckPassword(%q, %q) = %t, want %t", tt.user, tt.password, got, tt.want)
			}
		})
	}
	if d.Settings.MinPasswordLength != 8 || d.Settings.PasswordComplexity != 2 {
		t.Errorf("example settings = %+v, want length 8 and complexity 2", d.Settings)
	}
}

// testData has an admin, a reader, an external user and a policy of at least
// ten characters of three classes.
func testData() hubsim.Data {
	return hubsim.Data{
		Users: []hubsim.User{
			{ID: "root", Password: "Root-pass-1", Roles: []string{"admin"}, Email: "r@x.test"},
			{ID: "alice", Password: "Alice-pass-1", Roles: []string{"reader"}},
			{ID: "a/b", Password: "Slash-pass-1"},
			{ID: "ext", Email: "ext@x.test", External: true, Roles: []string{"admin"}},
		},
		Settings: hubsim.Settings{MinPasswordLength: 10, PasswordComplexity: 3},
	}
}

func TestServeHTTP(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		target   string
		user     string // signs in as user with their password; "-" for none
		password string // overrides the password when set
		body     string
		want     int
	}{
		{"answers the status", "GET", "/api/", "root", "", "", 200},
		{"lets a reader see the status", "GET", "/api/", "alice", "", "", 200},
		{"answers the settings", "GET", "/api/settings", "alice", "", "", 200},
		{"asks for credentials", "GET", "/api/", "-", "", "", 401},
		{"refuses a wrong password", "GET", "/api/", "root", "nope", "", 401},
		{"refuses an external user", "GET", "/api/", "ext", "", "", 401},
		{"finds a user", "GET", "/api/user/alice", "root", "", "", 200},
		{"finds a user with an escaped slash", "GET", "/api/user/a%2Fb", "root", "", "", 200},
		{"needs the admin role", "GET", "/api/user/alice", "alice", "", "", 403},
		{"reports an unknown user", "GET", "/api/user/nobody", "root", "", "", 404},
		{"refuses a second segment", "GET", "/api/user/a/b", "root", "", "", 404},
		{"refuses an empty segment", "GET", "/api/user/", "root", "", "", 404},
		{"keeps a parent step in the name", "GET", "/api/user/..%2Fsettings", "root", "", "", 404},
		{"refuses an unknown path", "GET", "/api/users", "root", "", "", 404},
		{"refuses another method", "DELETE", "/api/user/alice", "root", "", "", 405},
		{"refuses a post of settings", "POST", "/api/settings", "root", "", "{}", 405},
		{"sets a password", "POST", "/api/user/alice", "root", "", pw("New-pass-123"), 204},
		{"refuses a short password", "POST", "/api/user/alice", "root", "", pw("Sh0rt-pw"), 422},
		{"refuses a simple password", "POST", "/api/user/alice", "root", "", pw("longlowercase1"),
			422},
		{"refuses an external user's password", "POST", "/api/user/ext", "root", "",
			pw("New-pass-123"), 422},
		{"refuses setting an unknown user", "POST", "/api/user/nobody", "root", "",
			pw("New-pass-123"), 404},
		{"refuses a body without password", "POST", "/api/user/alice", "root", "", "{}", 400},
		{"refuses other fields", "POST", "/api/user/alice", "root", "",
			`{"password":"New-pass-123","roles":["admin"]}`, 400},
		{"refuses a body that is not json", "POST", "/api/user/alice", "root", "",
			"password=New-pass-123", 400},
	}
	passwords := map[string]string{}
	for _, u := range testData().Users {
		passwords[u.ID] = u.Password
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := hubsim.New(testData())
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.user != "-" {
				password := passwords[tt.user]
				if tt.password != "" {
					password = tt.password
				}
				r.SetBasicAuth(tt.user, password)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.target, w.Code, w.Body, tt.want)
			}
			realm := w.Header().Get("WWW-Authenticate")
			if w.Code == 401 && realm != `Basic realm="Mission Portal"` {
				t.Errorf("%s %s WWW-Authenticate = %q, want the Mission Portal realm",
					tt.method, tt.target, realm)
			}
			if w.Code >= 400 && !json.Valid(w.Body.Bytes()) {
				t.Errorf("%s %s body = %q, want JSON", tt.method, tt.target, w.Body)
			}
			sets := 0
			if w.Code == 204 {
				sets = 1
			}
			if got := s.PasswordSets("alice"); got != sets {
				t.Errorf("PasswordSets(alice) = %d, want %d", got, sets)
			}
			if s.Calls() != 1 {
				t.Errorf("Calls() = %d, want 1", s.Calls())
			}
		})
	}
}

// pw returns a body setting password.
func pw(password string) string {
	body, _ := json.Marshal(map[string]string{"password": password})
	return string(body)
}

func TestUserRecord(t *testing.T) {
	s := hubsim.New(testData())
	r := httptest.NewRequest("GET", "/api/user/root", nil)
	r.SetBasicAuth("root", "Root-pass-1")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var got struct {
		Meta map[string]any
		Data []map[string]any
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("GET /api/user/root = %q, want JSON: %v", w.Body, err)
	}
	if len(got.Data) != 1 || got.Data[0]["id"] != "root" || got.Data[0]["email"] != "r@x.test" {
		t.Fatalf("GET /api/user/root data = %v, want the one record of root", got.Data)
	}
	if _, ok := got.Data[0]["password"]; ok || strings.Contains(w.Body.String(), "Root-pass") {
		t.Errorf("GET /api/user/root = %q, want no password", w.Body)
	}
	if got.Meta["count"] != 1.0 || got.Meta["timestamp"] == nil {
		t.Errorf("GET /api/user/root meta = %v, want count 1 and a timestamp", got.Meta)
	}
}

func TestSetDown(t *testing.T) {
	s := hubsim.New(testData())
	get := func() int {
		r := httptest.NewRequest("GET", "/api/", nil)
		r.SetBasicAuth("root", "Root-pass-1")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	tests := []struct {
		name string
		down bool
		want int
	}{
		{"answers 503 when down", true, http.StatusServiceUnavailable},
		{"answers again when up", false, http.StatusOK},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetDown(tt.down)
			if got := get(); got != tt.want {
				t.Errorf("GET /api/ with SetDown(%t) = %d, want %d", tt.down, got, tt.want)
			}
			if got := s.Calls(); got != i+1 {
				t.Errorf("Calls() = %d, want %d", got, i+1)
			}
		})
	}
}

func TestNewDefaultsAndCopies(t *testing.T) {
	d := testData()
	d.Settings.MinPasswordLength = 0
	d.Settings.PasswordComplexity = 0
	s := hubsim.New(d)
	d.Users[1].Password = "changed-after-New"
	tests := []struct {
		name, password string
		want           int
	}{
		{"uses a minimum of eight", "seven77", http.StatusUnprocessableEntity},
		{"accepts eight characters", "eight888", http.StatusNoContent},
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
	if s.CheckPassword("alice", "changed-after-New") {
		t.Errorf("CheckPassword(alice) follows a change of Data after New, want a copy")
	}
}
