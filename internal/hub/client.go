// Package hub calls the admin REST API of a CFEngine Mission Portal hub: it
// looks users up, sets their passwords and reads the password policy.
//
// Every call authenticates with HTTP Basic as one internal admin account of the
// hub, the service account, which must not use two-factor authentication.
// Errors wrap ErrNotFound, ErrUnavailable or ErrRejected and never carry the
// service credentials, a password or the text of the hub's answer.
package hub

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// defaultTimeout bounds a call when Config.Timeout is zero.
	defaultTimeout = 10 * time.Second

	// maxAnswer is the most bytes of an answer body the client reads.
	maxAnswer = 1 << 20

	// defaultMinPasswordLength is the hub's own default for minPasswordLength.
	defaultMinPasswordLength = 8
)

// Config says how to reach the hub's API. URL is required; New does not check
// User and Password, but the hub refuses every call without them.
type Config struct {
	// URL is the hub's base URL, such as https://127.0.0.1. Calls go to URL
	// followed by /api/...; a path prefix in URL is kept. It must not carry
	// credentials, a query or a fragment.
	URL string

	// User is the service account's name, sent with HTTP Basic.
	User string

	// Password is the service account's password, sent with HTTP Basic.
	Password string

	// CAFile is an optional PEM file of CA certificates. When set, the hub's
	// certificate must chain to one of them and the system roots are not
	// used; this is how a hub with a self-signed certificate is trusted.
	CAFile string

	// Insecure turns off verification of the hub's certificate, and makes
	// CAFile irrelevant. Use it only to try things out.
	Insecure bool

	// Timeout bounds each call, from connecting to reading the answer.
	// Zero or less means 10 seconds.
	Timeout time.Duration

	// Observe, when set, is told how long each call to the hub took,
	// answered or not; call is one of the Call values.
	Observe func(call Call, took time.Duration)
}

// Call names a kind of call to the hub, for Config.Observe.
type Call string

// The calls a Client makes.
const (
	CallUser        Call = "user_lookup"
	CallSetPassword Call = "set_password"
	CallSettings    Call = "settings"
	CallPing        Call = "ping"
)

// Client calls one hub's API. It is safe for concurrent use and reuses its
// connections; call Close when it is no longer needed.
type Client struct {
	scheme   string
	host     string
	prefix   string // escaped path prefix, without a trailing slash
	user     string
	password string
	http     *http.Client
	observe  func(Call, time.Duration)
}

// User is the part of a hub user's record the project uses.
type User struct {
	// ID is the user name, equal to the name that was looked up.
	ID string
	// Email is the registered address; it may be empty.
	Email string
	// Name is the display name; it may be empty.
	Name string
	// TimeZone is an IANA zone name such as Europe/Oslo; it may be empty.
	TimeZone string
	// External is true for users from LDAP or Active Directory, whose
	// password the hub cannot set.
	External bool
	// Roles lists the user's role names.
	Roles []string
	// TwoFactorEnabled is true when the user signs in with a second factor.
	TwoFactorEnabled bool
}

// Settings is the hub's password policy.
type Settings struct {
	// MinPasswordLength is the least number of characters; 8 when the hub
	// does not say.
	MinPasswordLength int
	// PasswordComplexity is how many of four character classes (lowercase,
	// uppercase, digits, others) a password needs, from 0 to 4.
	PasswordComplexity int
	// PasswordExpirationAfterResetHours is how long a password set by an
	// admin stays valid on hubs that treat it as temporary; 0 means forever.
	PasswordExpirationAfterResetHours int
	// Enforce2FA is true when every user must use two-factor authentication.
	Enforce2FA bool
}

// New returns a Client for the hub described by cfg. It fails when the URL is
// not an absolute http or https URL or the CA file cannot be used; it does not
// contact the hub (see Ping).
func New(cfg Config) (*Client, error) {
	scheme, host, prefix, err := parseBase(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("hub url: %w", err)
	}
	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: cfg.Insecure,
	}
	if cfg.CAFile != "" {
		pool, err := loadCAs(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading hub CA file: %w", err)
		}
		tlsConfig.RootCAs = pool
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		// no Proxy: the service credentials go to the hub and nowhere else
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
	return &Client{
		scheme:   scheme,
		host:     host,
		prefix:   prefix,
		user:     cfg.User,
		password: cfg.Password,
		observe:  cfg.Observe,
		http: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// a redirect is answered as is: following it could send the
			// credentials elsewhere and would turn a POST into a GET
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// parseBase splits a hub base URL into scheme, host and escaped path prefix.
func parseBase(raw string) (scheme, host, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may hold credentials
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", "", err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", "", "", errors.New("scheme must be http or https")
	case u.Host == "":
		return "", "", "", errors.New("host is missing")
	case u.User != nil:
		return "", "", "", errors.New("credentials belong in user and password, not the url")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", "", "", errors.New("query and fragment are not allowed")
	}
	return u.Scheme, u.Host, strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// loadCAs reads a PEM file holding at least one certificate.
func loadCAs(path string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// Close closes the client's idle connections. A closed Client still works,
// opening new connections as needed.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
}

// Ping checks that the hub answers and accepts the service credentials.
func (c *Client) Ping(ctx context.Context) error {
	code, _, err := c.call(ctx, CallPing, http.MethodGet, "/api/", nil)
	if err != nil {
		return fmt.Errorf("checking hub: %w", err)
	}
	switch code {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("checking hub: hub answered %d: %w: %w", code, ErrCredentials, ErrUnavailable)
	}
	return fmt.Errorf("checking hub: hub answered %d: %w", code, ErrUnavailable)
}

// User looks up the user called name. It returns ErrNotFound, without asking
// the hub, for a name that is empty, "." or ".." or not valid UTF-8, and
// whenever the hub's record is not for exactly that name.
func (c *Client) User(ctx context.Context, name string) (User, error) {
	path, err := userPath(name)
	if err != nil {
		return User{}, fmt.Errorf("looking up hub user: %w", err)
	}
	code, body, err := c.call(ctx, CallUser, http.MethodGet, path, nil)
	if err != nil {
		return User{}, fmt.Errorf("looking up hub user: %w", err)
	}
	switch {
	case unavailable(code):
		return User{}, fmt.Errorf("looking up hub user: hub answered %d: %w", code, ErrUnavailable)
	case code != http.StatusOK:
		return User{}, fmt.Errorf("looking up hub user: hub answered %d: %w", code, ErrNotFound)
	}
	var answer struct {
		Data []struct {
			ID               string   `json:"id"`
			Email            string   `json:"email"`
			Name             string   `json:"name"`
			TimeZone         string   `json:"time_zone"`
			External         bool     `json:"external"`
			Roles            []string `json:"roles"`
			TwoFactorEnabled bool     `json:"two_factor_enabled"`
		} `json:"data"`
	}
	if err := decode(body, &answer); err != nil {
		return User{}, fmt.Errorf("looking up hub user: %w", err)
	}
	// trust the record only when it is for the very name asked about
	if len(answer.Data) == 0 || answer.Data[0].ID != name {
		return User{}, fmt.Errorf("looking up hub user: hub answered no matching record: %w",
			ErrNotFound)
	}
	d := answer.Data[0]
	return User{
		ID:               d.ID,
		Email:            d.Email,
		Name:             d.Name,
		TimeZone:         d.TimeZone,
		External:         d.External,
		Roles:            d.Roles,
		TwoFactorEnabled: d.TwoFactorEnabled,
	}, nil
}

// SetPassword sets the password of the user called name. It returns
// ErrRejected, without asking the hub, for an empty password or one that is
// not valid UTF-8, and ErrNotFound for a name User would refuse.
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	path, err := userPath(name)
	if err != nil {
		return fmt.Errorf("setting password: %w", err)
	}
	// JSON would silently replace invalid bytes, setting another password
	if password == "" || !utf8.ValidString(password) {
		return fmt.Errorf("setting password: empty or not UTF-8: %w", ErrRejected)
	}
	body, err := json.Marshal(struct {
		Password string `json:"password"`
	}{password})
	if err != nil {
		// cannot happen for a struct of one string; the error never shows it
		return fmt.Errorf("setting password: encoding request: %w", ErrRejected)
	}
	code, _, err := c.call(ctx, CallSetPassword, http.MethodPost, path, body)
	if err != nil {
		return fmt.Errorf("setting password: %w", err)
	}
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusNotFound:
		return fmt.Errorf("setting password: hub answered %d: %w", code, ErrNotFound)
	case unavailable(code):
		return fmt.Errorf("setting password: hub answered %d: %w", code, ErrUnavailable)
	}
	return fmt.Errorf("setting password: hub answered %d: %w", code, ErrRejected)
}

// Settings reads the hub's password policy. It returns ErrNotFound when the
// hub has no settings API, as before Mission Portal 3.24.
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	code, body, err := c.call(ctx, CallSettings, http.MethodGet, "/api/settings", nil)
	if err != nil {
		return Settings{}, fmt.Errorf("reading hub settings: %w", err)
	}
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return Settings{}, fmt.Errorf("reading hub settings: hub answered 404: %w", ErrNotFound)
	default:
		return Settings{}, fmt.Errorf("reading hub settings: hub answered %d: %w",
			code, ErrUnavailable)
	}
	// a key the hub leaves out keeps the hub's own default
	answer := struct {
		MinPasswordLength                 int  `json:"minPasswordLength"`
		PasswordComplexity                int  `json:"passwordComplexity"`
		PasswordExpirationAfterResetHours int  `json:"passwordExpirationAfterResetHours"`
		Enforce2FA                        bool `json:"enforce2FA"`
	}{MinPasswordLength: defaultMinPasswordLength}
	if err := decode(body, &answer); err != nil {
		return Settings{}, fmt.Errorf("reading hub settings: %w", err)
	}
	return Settings(answer), nil
}

// userPath returns the escaped API path of the user called name, with the
// name as one path segment, or ErrNotFound for a name that cannot be one.
func userPath(name string) (string, error) {
	// "." and ".." survive escaping and would be resolved as path steps
	if name == "" || name == "." || name == ".." || !utf8.ValidString(name) {
		return "", fmt.Errorf("unusable user name: %w", ErrNotFound)
	}
	return "/api/user/" + url.PathEscape(name), nil
}

// call sends one request to an escaped API path and returns the status and
// the body of the answer. Its errors wrap ErrUnavailable.
func (c *Client) call(
	ctx context.Context, kind Call, method, path string, body []byte,
) (int, []byte, error) {
	if c.observe != nil {
		defer func(start time.Time) { c.observe(kind, time.Since(start)) }(time.Now())
	}
	raw := c.prefix + path
	unescaped, err := url.PathUnescape(raw)
	if err != nil {
		return 0, nil, fmt.Errorf("building request: %w: %w", ErrUnavailable, err)
	}
	u := &url.URL{Scheme: c.scheme, Host: c.host, Path: unescaped, RawPath: raw}
	// net/url sends an escaping of Path when RawPath does not match it, which
	// would turn an escaped "/" in a user name into a real one
	if u.EscapedPath() != raw {
		return 0, nil, fmt.Errorf("building request: path not kept: %w", ErrUnavailable)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("building request: %w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mpgate")
	req.SetBasicAuth(c.user, c.password)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrUnavailable, withoutURL(err))
	}
	defer resp.Body.Close()
	// reading the body to its end lets the connection be reused
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading answer: %w: %w", ErrUnavailable, withoutURL(err))
	}
	if len(data) > maxAnswer {
		return 0, nil, fmt.Errorf("answer larger than %d bytes: %w", maxAnswer, ErrUnavailable)
	}
	return resp.StatusCode, data, nil
}

// decode parses a JSON answer. Its errors wrap ErrUnavailable and, unlike
// those of encoding/json, quote nothing from the answer.
func decode(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Errorf("decoding answer: unexpected type for %s: %w",
			typeErr.Field, ErrUnavailable)
	}
	return fmt.Errorf("decoding answer: not the expected JSON: %w", ErrUnavailable)
}
