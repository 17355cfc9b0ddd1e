// Package hubsim is a stand-in for a CFEngine Mission Portal hub, for tests
// and local trials. It is not a hub: it implements only the parts of the
// hub's REST API that mpgate calls, as the Mission Portal documentation
// describes them, with HTTP Basic authentication of internal users.
//
// It serves GET /api/ (status), GET and POST /api/user/:name (look a user up,
// set a password; admin role required) and GET /api/settings (password
// policy). Where the documentation says nothing, the stand-in makes a choice
// of its own and says so; in particular the real hub's error bodies are
// undocumented, and the stand-in answers every error with
//
//	{"success":false,"errors":[{"field":"password","message":"..."}]}
//
// where field is left out when the error is not about a field. A refused
// password is answered 422; a body that is not JSON of one "password" key is
// answered 400.
package hubsim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// defaultMinPasswordLength is what New uses for MinPasswordLength 0.
	defaultMinPasswordLength = 8

	// maxBody is the largest request body the stand-in reads.
	maxBody = 64 << 10

	// realm is the HTTP Basic realm sent with 401 answers.
	realm = `Basic realm="Mission Portal"`
)

// User is one user of the stand-in, as stored in the users file.
type User struct {
	// ID is the user name.
	ID string `json:"id"`
	// Password is the user's password; external users have none on the hub.
	Password string `json:"password"`
	// Email is the registered address; it may be empty.
	Email string `json:"email,omitempty"`
	// Name is the display name.
	Name string `json:"name,omitempty"`
	// TimeZone is an IANA zone name such as Europe/Oslo.
	TimeZone string `json:"time_zone,omitempty"`
	// External marks an LDAP or Active Directory user: it cannot sign in to
	// the stand-in and its password cannot be set.
	External bool `json:"external"`
	// Roles lists role names; "admin" may use the user API.
	Roles []string `json:"roles"`
	// TwoFactorEnabled is reported as is; the stand-in asks for no second
	// factor.
	TwoFactorEnabled bool `json:"two_factor_enabled"`
}

// Settings is the password policy the stand-in enforces and reports.
type Settings struct {
	// MinPasswordLength is the least number of characters of a new password.
	MinPasswordLength int `json:"minPasswordLength"`
	// PasswordComplexity is how many of lowercase, uppercase, digit and other
	// characters a new password needs, from 0 to 4.
	PasswordComplexity int `json:"passwordComplexity"`
	// PasswordExpirationAfterResetHours is reported only.
	PasswordExpirationAfterResetHours int `json:"passwordExpirationAfterResetHours"`
	// Enforce2FA is reported only.
	Enforce2FA bool `json:"enforce2FA"`
}

// Data is the content of a users file.
type Data struct {
	// Users are the stand-in's users; IDs must be unique and not empty.
	Users []User `json:"users"`
	// Settings is the password policy.
	Settings Settings `json:"settings"`
}

// Load reads a users file in the JSON form of Data. Unknown keys, empty or
// repeated user IDs are errors.
func Load(path string) (Data, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Data{}, fmt.Errorf("reading users file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var d Data
	if err := dec.Decode(&d); err != nil {
		return Data{}, fmt.Errorf("decoding users file %s: %w", path, err)
	}
	seen := make(map[string]bool, len(d.Users))
	for i, u := range d.Users {
		switch {
		case u.ID == "":
			return Data{}, fmt.Errorf("checking users file %s: user %d has no id", path, i)
		case seen[u.ID]:
			return Data{}, fmt.Errorf("checking users file %s: user %q appears twice", path, u.ID)
		}
		seen[u.ID] = true
	}
	return d, nil
}

// Server is the stand-in hub, an http.Handler. It is safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	users    map[string]*User
	settings Settings
	sets     map[string]int
	calls    int
	down     bool
}

// New returns a stand-in serving the users and settings of d; d is copied. A
// MinPasswordLength of 0 means 8. Of users with the same ID the last is kept.
func New(d Data) *Server {
	s := &Server{
		users:    make(map[string]*User, len(d.Users)),
		settings: d.Settings,
		sets:     make(map[string]int),
	}
	if s.settings.MinPasswordLength == 0 {
		s.settings.MinPasswordLength = defaultMinPasswordLength
	}
	for _, u := range d.Users {
		u.Roles = slices.Clone(u.Roles)
		s.users[u.ID] = &u
	}
	return s
}

// PasswordSets returns how many times a password was set for the user name.
func (s *Server) PasswordSets(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sets[name]
}

// CheckPassword reports whether password is the current password of the
// internal user name. It is false for unknown and external users and for an
// empty password.
func (s *Server) CheckPassword(name, password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	return u != nil && passwordMatches(u, password)
}

// Calls returns the number of requests served so far, whatever their answer.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// SetSettings replaces the password policy, as an administrator changing
// it on a running hub. A MinPasswordLength of 0 means 8.
func (s *Server) SetSettings(settings Settings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if settings.MinPasswordLength == 0 {
		settings.MinPasswordLength = defaultMinPasswordLength
	}
	s.settings = settings
}

// SetDown simulates an outage: while down, every request is answered 503.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// reply is an answer worked out under the lock and written after it.
type reply struct {
	code   int
	header map[string]string
	body   any // encoded as JSON; nil for no body
}

// problem is the stand-in's error body.
type problem struct {
	Success bool         `json:"success"`
	Errors  []fieldError `json:"errors"`
}

// fieldError is one entry of a problem.
type fieldError struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// failure returns an error reply.
func failure(code int, field, message string) reply {
	return reply{code: code, body: problem{Errors: []fieldError{{field, message}}}}
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// the body is read before taking the lock, so a slow client holds no one up
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var rep reply
	switch {
	case err != nil:
		rep = failure(http.StatusBadRequest, "", "the request body could not be read")
	case len(body) > maxBody:
		rep = failure(http.StatusRequestEntityTooLarge, "", "the request body is too large")
	default:
		rep = s.handle(r, body)
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.body == nil {
		w.WriteHeader(rep.code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.code)
	_ = json.NewEncoder(w).Encode(rep.body)
}

// handle works out the answer to a request whose body has been read.
func (s *Server) handle(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.down {
		return failure(http.StatusServiceUnavailable, "", "the hub stand-in is down")
	}
	caller, ok := s.authenticate(r)
	if !ok {
		rep := failure(http.StatusUnauthorized, "", "authentication required")
		rep.header = map[string]string{"WWW-Authenticate": realm}
		return rep
	}
	path := r.URL.EscapedPath()
	switch {
	case path == "/api/":
		if r.Method != http.MethodGet {
			return notAllowed(http.MethodGet)
		}
		return reply{code: http.StatusOK, body: map[string]string{
			"application": "Mission Portal stand-in",
			"version":     "hubsim",
		}}
	case path == "/api/settings":
		if r.Method != http.MethodGet {
			return notAllowed(http.MethodGet)
		}
		return reply{code: http.StatusOK, body: s.settings}
	case strings.HasPrefix(path, "/api/user/"):
		return s.user(r, caller, strings.TrimPrefix(path, "/api/user/"), body)
	}
	return failure(http.StatusNotFound, "", "no such API")
}

// authenticate returns the internal user whose HTTP Basic credentials r
// carries.
func (s *Server) authenticate(r *http.Request) (*User, bool) {
	name, password, ok := r.BasicAuth()
	if !ok {
		return nil, false
	}
	u := s.users[name]
	if u == nil || !passwordMatches(u, password) {
		return nil, false
	}
	return u, true
}

// passwordMatches reports whether password signs u in.
func passwordMatches(u *User, password string) bool {
	if u.External || u.Password == "" || password == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
}

// notAllowed answers a method the path does not serve.
func notAllowed(allow string) reply {
	rep := failure(http.StatusMethodNotAllowed, "", "method not allowed")
	rep.header = map[string]string{"Allow": allow}
	return rep
}

// user serves /api/user/ followed by segment, still escaped.
func (s *Server) user(r *http.Request, caller *User, segment string, body []byte) reply {
	// exactly one segment: an escaped "/" stays inside it
	name, err := url.PathUnescape(segment)
	if segment == "" || strings.Contains(segment, "/") || err != nil {
		return failure(http.StatusNotFound, "", "no such API")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return notAllowed("GET, POST")
	}
	if !slices.Contains(caller.Roles, "admin") {
		return failure(http.StatusForbidden, "", "the admin role is required")
	}
	u := s.users[name]
	if u == nil {
		return failure(http.StatusNotFound, "id", "user not found")
	}
	if r.Method == http.MethodGet {
		return s.describe(u)
	}
	return s.setPassword(u, body)
}

// describe answers a user lookup the way the hub's API documents it.
func (s *Server) describe(u *User) reply {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	record := map[string]any{
		"id":                 u.ID,
		"email":              u.Email,
		"name":               u.Name,
		"time_zone":          u.TimeZone,
		"external":           u.External,
		"roles":              roles,
		"two_factor_enabled": u.TwoFactorEnabled,
	}
	return reply{code: http.StatusOK, body: map[string]any{
		"meta": map[string]any{
			"page": 1, "count": 1, "total": 1, "timestamp": time.Now().Unix(),
		},
		"data": []any{record},
	}}
}

// setPassword checks and stores a new password for u.
func (s *Server) setPassword(u *User, body []byte) reply {
	var req struct {
		Password *string `json:"password"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Password == nil {
		return failure(http.StatusBadRequest, "", `the body must be {"password": "..."}`)
	}
	if err := s.checkPassword(u, *req.Password); err != nil {
		return failure(http.StatusUnprocessableEntity, "password", err.Error())
	}
	u.Password = *req.Password
	s.sets[u.ID]++
	return reply{code: http.StatusNoContent}
}

// checkPassword applies the password policy to a new password for u.
func (s *Server) checkPassword(u *User, password string) error {
	if u.External {
		return errors.New("the password of an external user cannot be set")
	}
	if n := utf8.RuneCountInString(password); n < s.settings.MinPasswordLength {
		return fmt.Errorf("the password must have at least %d characters",
			s.settings.MinPasswordLength)
	}
	if classes(password) < s.settings.PasswordComplexity {
		return fmt.Errorf("the password must mix at least %d of lowercase, uppercase, "+
			"digits and other characters", s.settings.PasswordComplexity)
	}
	return nil
}

// classes counts which of lowercase, uppercase, digit and other characters
// occur in password.
func classes(password string) int {
	var lower, upper, digit, other int
	for _, c := range password {
		switch {
		case unicode.IsLower(c):
			lower = 1
		case unicode.IsUpper(c):
			upper = 1
		case unicode.IsDigit(c):
			digit = 1
		default:
			other = 1
		}
	}
	return lower + upper + digit + other
}
