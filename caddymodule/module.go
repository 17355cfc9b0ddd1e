// Package caddymodule is the password_reset Caddy HTTP handler: it answers
// CFEngine Mission Portal's password-reset API and serves the reset page in
// front of a hub, and hands every other request to the next handler.
package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/mailer"
	"github.com/mpgate/password-reset/internal/store"
	"github.com/mpgate/password-reset/internal/worker"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// now holds the time source of every handler and worker; tests replace it.
var now atomic.Pointer[func() time.Time]

func init() {
	f := time.Now
	now.Store(&f)
}

// clock returns the current time of the module.
func clock() time.Time { return (*now.Load())() }

// Handler serves the password-reset API and page in front of a Mission
// Portal hub. Requests for anything else go to the next handler untouched.
type Handler struct {
	// HubURL is the hub's own address, e.g. https://127.0.0.1. Required.
	HubURL string `json:"hub_url,omitempty"`
	// HubUser is an internal admin account of the hub, without two-factor
	// authentication, used to look users up and set passwords. Required.
	HubUser string `json:"hub_user,omitempty"`
	// HubPassword is HubUser's password. Placeholders such as {env.X} and
	// {file.X} are replaced when the module is provisioned. Required.
	HubPassword string `json:"hub_password,omitempty"`
	// HubTLSCA is a PEM file of certificates to trust for the hub, for a
	// hub with a self-signed certificate. Default: the system's roots.
	HubTLSCA string `json:"hub_tls_ca,omitempty"`
	// HubTLSInsecure skips verification of the hub's certificate. A
	// warning is logged at start. Default: false.
	HubTLSInsecure bool `json:"hub_tls_insecure,omitempty"`
	// PublicURL is where users reach this site; it is the only base of
	// links in mail. It must be https unless its host is a loopback
	// address. Required.
	PublicURL string `json:"public_url,omitempty"`
	// Storage is the directory of the token and outbox database.
	// Default: password_reset under Caddy's data directory.
	Storage string `json:"storage,omitempty"`
	// TokenKey is a hex-encoded key of at least 32 bytes that digests
	// new tokens and verifies them. A reload applies a changed key at
	// once. Default: a key generated on first start and kept in Storage.
	TokenKey string `json:"token_key,omitempty"`
	// PreviousTokenKeys are hex-encoded keys that only verify: tokens
	// issued under them keep working until they expire, while TokenKey
	// issues new ones. List a key here when it is rotated out, and drop
	// it once token_ttl has passed. Default: none.
	PreviousTokenKeys []string `json:"previous_token_keys,omitempty"`
	// TokenTTL is how long a reset link works. Default: 48h.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`
	// SMTP is how mail is sent.
	SMTP SMTP `json:"smtp,omitzero"`
	// Templates is a directory whose reset.txt.tmpl, reset.html.tmpl,
	// changed.txt.tmpl and changed.html.tmpl replace the built-in mail
	// templates of those names. Default: the built-in templates.
	Templates string `json:"templates,omitempty"`
	// MailSubject is the subject of the reset mail. Default: "Reset your
	// Mission Portal password".
	MailSubject string `json:"mail_subject,omitempty"`
	// ChangedSubject is the subject of the notice sent after a reset.
	// Default: "Your Mission Portal password was changed".
	ChangedSubject string `json:"changed_subject,omitempty"`
	// MailRetry says how failed sends (and hub look-ups) are retried.
	MailRetry Retry `json:"mail_retry,omitzero"`
	// Limits bound what one caller, one token and one user can cost.
	Limits Limits `json:"limits,omitzero"`

	logger *zap.Logger
	audit  *zap.Logger
	deps   *worker.Deps
	hub    *hub.Client
	keys   tokenKeys

	// set by start, before ready is closed, and never changed after
	ready   chan struct{}
	shared  *shared
	limits  *limiters
	key     string
	stopped *atomic.Bool
}

// SMTP configures the mail server.
type SMTP struct {
	// Server is the SMTP server as host:port. Required.
	Server string `json:"server,omitempty"`
	// Username for SMTP AUTH. Default: no authentication.
	Username string `json:"username,omitempty"`
	// Password for SMTP AUTH; placeholders are replaced.
	Password string `json:"password,omitempty"`
	// From is the sender, e.g. "Mission Portal <noreply@example.com>".
	// Required.
	From string `json:"from,omitempty"`
	// TLS is starttls (mandatory STARTTLS), implicit (TLS from the first
	// byte) or none. Default: starttls.
	TLS string `json:"tls,omitempty"`
}

// Retry configures the backoff of failed sends.
type Retry struct {
	// First is the wait after the first failure; it doubles with every
	// further one. Default: 5s.
	First caddy.Duration `json:"first,omitempty"`
	// Max caps the wait between tries. Default: 10m.
	Max caddy.Duration `json:"max,omitempty"`
	// GiveUp drops a request this long after it was made. Default: 24h.
	GiveUp caddy.Duration `json:"give_up,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.password_reset",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, checks the configuration and opens the store,
// the hub client and the mailer.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.audit = h.logger.Named("audit")
	h.applyDefaults()
	if err := h.check(); err != nil {
		return err
	}
	hc, err := hub.New(hub.Config{
		URL:      h.HubURL,
		User:     h.HubUser,
		Password: h.HubPassword,
		CAFile:   h.HubTLSCA,
		Insecure: h.HubTLSInsecure,
		Observe:  observeHub,
	})
	if err != nil {
		// the URL was checked above; what is left is the CA file
		return fmt.Errorf("hub_tls_ca: %w", err)
	}
	if h.HubTLSInsecure {
		h.logger.Warn("hub_tls_insecure is set: the hub's certificate is not verified")
	}
	mail, err := mailer.New(mailer.Config{
		Server:   h.SMTP.Server,
		Username: h.SMTP.Username,
		Password: h.SMTP.Password,
		From:     h.SMTP.From,
		TLS:      h.SMTP.TLS,

		Templates:      h.Templates,
		Subject:        h.MailSubject,
		ChangedSubject: h.ChangedSubject,
	})
	if err != nil {
		return err
	}
	h.keys = h.tokenKeys()            // checked above
	base, _ := url.Parse(h.PublicURL) // checked above
	base.Path = trimSlash(base.Path)
	h.hub = hc
	h.deps = &worker.Deps{
		Hub:   hc,
		Mail:  mail,
		Links: worker.Links{Base: base, PagePath: pagePrefix},
		TTL:   time.Duration(h.TokenTTL),
		Retry: worker.Backoff{
			First:  time.Duration(h.MailRetry.First),
			Max:    time.Duration(h.MailRetry.Max),
			GiveUp: time.Duration(h.MailRetry.GiveUp),
		},
		Budgets:        budgets(h.Limits.MailsPerUser),
		MailsPerMinute: h.Limits.MailsPerMinute,
		Logger:         h.logger,
		Audit:          h.audit,
		Observer:       mailObserver{},
	}
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if err := metrics.register(reg); err != nil {
			return err
		}
	}
	h.ready, h.stopped = make(chan struct{}), new(atomic.Bool)
	// the store opens when Caddy starts serving, not here: validating a
	// config provisions it too, and must neither lock the store nor mail
	app, err := ctx.App(appID)
	if err != nil {
		return fmt.Errorf("loading the %s app: %w", appID, err)
	}
	app.(*App).add(h)
	return nil
}

// start opens (or joins) the shared store and worker of the handler's
// storage directory, lets requests in, and checks the hub and the SMTP
// server in the background.
func (h *Handler) start() error {
	sh, key, err := acquireShared(h.Storage, h.keys, h.logger)
	if err != nil {
		return fmt.Errorf("password_reset storage: %w", err)
	}
	changed, err := sh.register(h.deps, h.keys)
	if err != nil {
		_, _ = pool.Delete(key)
		return fmt.Errorf("password_reset token keys: %w", err)
	}
	if changed {
		// a reload rotated the keys; say how many, never which
		h.logger.Info("token keys applied", zap.Int("previous_token_keys", len(h.keys.previous)))
	}
	h.shared, h.key = sh, key
	h.limits = sh.limitersFor(h.Limits)
	close(h.ready)
	h.checkParts()
	return nil
}

// stop lets go of the shared state; the last handler to let go closes it.
// h.shared stays set: requests still in flight find the store closed, at
// worst, and answer with the API's fixed texts.
func (h *Handler) stop() error {
	if !h.stopped.CompareAndSwap(false, true) {
		return nil
	}
	uerr := h.shared.unregister(h.deps)
	_, err := pool.Delete(h.key)
	return errors.Join(uerr, err)
}

// started returns the shared state once the handler has started, waiting
// a little for it: Caddy may start serving before it starts this module's
// app.
func (h *Handler) started() *shared {
	select {
	case <-h.ready:
		return h.shared
	default:
	}
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-h.ready:
		return h.shared
	case <-t.C:
		return nil
	}
}

// startWait bounds how long a request waits for the handler to start.
const startWait = 10 * time.Second

func budgets(rates []Rate) []store.Budget {
	out := make([]store.Budget, len(rates))
	for i, r := range rates {
		out[i] = r.budget()
	}
	return out
}

// Cleanup closes the hub client's idle connections. The store was let go
// when the app stopped.
func (h *Handler) Cleanup() error {
	if h.hub != nil {
		h.hub.Close()
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
