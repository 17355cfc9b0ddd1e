package caddymodule

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
)

// Defaults of the configuration.
const (
	defaultTokenTTL   = 48 * time.Hour
	defaultRetryFirst = 5 * time.Second
	defaultRetryMax   = 10 * time.Minute
	defaultGiveUp     = 24 * time.Hour
)

// applyDefaults fills in what the configuration left out and replaces
// placeholders such as {env.X} and {file.X} in the secrets.
func (h *Handler) applyDefaults() {
	repl := caddy.NewReplacer()
	for _, s := range []*string{
		&h.HubURL, &h.HubUser, &h.HubPassword, &h.HubTLSCA, &h.PublicURL,
		&h.Storage, &h.TokenKey, &h.SMTP.Server, &h.SMTP.Username,
		&h.SMTP.Password, &h.SMTP.From, &h.Templates,
	} {
		*s = repl.ReplaceKnown(*s, "")
	}
	// a key read from a file with {file.X} ends in a newline
	h.TokenKey = strings.TrimSpace(h.TokenKey)
	for i, k := range h.PreviousTokenKeys {
		h.PreviousTokenKeys[i] = strings.TrimSpace(repl.ReplaceKnown(k, ""))
	}
	if h.Storage == "" {
		h.Storage = filepath.Join(caddy.AppDataDir(), "password_reset", siteDir(h.PublicURL))
	}
	if h.TokenTTL == 0 {
		h.TokenTTL = caddy.Duration(defaultTokenTTL)
	}
	if h.SMTP.TLS == "" {
		h.SMTP.TLS = "starttls"
	}
	if h.MailRetry.First == 0 {
		h.MailRetry.First = caddy.Duration(defaultRetryFirst)
	}
	if h.MailRetry.Max == 0 {
		h.MailRetry.Max = caddy.Duration(defaultRetryMax)
	}
	if h.MailRetry.GiveUp == 0 {
		h.MailRetry.GiveUp = caddy.Duration(defaultGiveUp)
	}
	h.Limits.applyDefaults()
}

// check rejects a configuration the module cannot run with. Every message
// names the subdirective at fault.
func (h *Handler) check() error {
	required := []struct{ name, value string }{
		{"hub_url", h.HubURL},
		{"hub_user", h.HubUser},
		{"hub_password", h.HubPassword},
		{"public_url", h.PublicURL},
		{"smtp server", h.SMTP.Server},
		{"smtp from", h.SMTP.From},
	}
	for _, r := range required {
		if strings.TrimSpace(r.value) == "" {
			return fmt.Errorf("%s is required", r.name)
		}
	}
	if err := checkHubURL(h.HubURL); err != nil {
		return fmt.Errorf("hub_url: %w", err)
	}
	if err := checkPublicURL(h.PublicURL); err != nil {
		return fmt.Errorf("public_url: %w", err)
	}
	for _, s := range []struct{ name, value string }{
		{"mail_subject", h.MailSubject}, {"changed_subject", h.ChangedSubject},
	} {
		if strings.ContainsFunc(s.value, unicode.IsControl) {
			return fmt.Errorf("%s: must be one line without control characters", s.name)
		}
	}
	if h.TokenTTL <= 0 {
		return errors.New("token_ttl: must be a positive duration")
	}
	if h.MailRetry.First <= 0 || h.MailRetry.Max < h.MailRetry.First || h.MailRetry.GiveUp <= 0 {
		return errors.New("mail_retry: want positive durations, first not over max")
	}
	if err := h.Limits.check(); err != nil {
		return err
	}
	if h.TokenKey != "" && !isKey(h.TokenKey) {
		return errors.New("token_key: want at least 32 bytes, hex-encoded")
	}
	for i, k := range h.PreviousTokenKeys {
		if !isKey(k) {
			return fmt.Errorf("previous_token_keys: key %d: want at least 32 bytes, hex-encoded", i+1)
		}
	}
	return nil
}

// isKey reports whether s is a hex-encoded key of at least 32 bytes.
func isKey(s string) bool {
	k, err := hex.DecodeString(s)
	return err == nil && len(k) >= 32
}

// tokenKeys are a handler's decoded token keys.
type tokenKeys struct {
	// issue digests new tokens; nil stands for the key generated in the
	// storage directory
	issue []byte
	// previous only verify
	previous [][]byte
}

// tokenKeys decodes the checked token keys of the configuration.
func (h *Handler) tokenKeys() tokenKeys {
	var k tokenKeys
	k.issue, _ = hex.DecodeString(h.TokenKey)
	for _, p := range h.PreviousTokenKeys {
		raw, _ := hex.DecodeString(p)
		k.previous = append(k.previous, raw)
	}
	if len(k.issue) == 0 {
		k.issue = nil
	}
	return k
}

// equal reports whether two sets of keys digest and verify alike.
func (k tokenKeys) equal(o tokenKeys) bool {
	return bytes.Equal(k.issue, o.issue) &&
		slices.EqualFunc(k.previous, o.previous, bytes.Equal)
}

// The messages below never repeat the URL itself: a URL may carry a
// password, and Caddy prints provisioning errors.

// checkHubURL accepts an absolute http or https URL with no credentials in
// it: those belong in hub_user and hub_password.
func checkHubURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	if u.User != nil {
		return errors.New("put the account in hub_user and hub_password, not in the URL")
	}
	return nil
}

// checkPublicURL accepts the bare origin of the site, https or http on a
// loopback host: links in mail are built on it, and the page is served at a
// fixed path of this site.
func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return errors.New("want an absolute URL such as https://hub.example.com")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return errors.New("want no user, query or fragment in the URL")
	}
	if u.Path != "" && u.Path != "/" {
		return errors.New("want the site's origin without a path: the page is served at /password-reset/")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must be https unless its host is a loopback address")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// siteDir names the default storage directory of a site after its public
// host, so that two sites of one Caddy keep apart by default.
func siteDir(public string) string {
	u, err := url.Parse(public)
	if err != nil || u.Host == "" {
		return "default"
	}
	return strings.NewReplacer(":", "_", "[", "", "]", "").Replace(strings.ToLower(u.Host))
}

func trimSlash(p string) string { return strings.TrimRight(p, "/") }
