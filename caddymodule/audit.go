package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/store"
	"github.com/mpgate/password-reset/internal/worker"
)

// Every decision the module makes on a request is one event in the audit
// log (the logger http.handlers.password_reset.audit) and one count in the
// requests metric. An event names the user where it is known and always
// the client address; it never holds a token, a link or a password.

// Why a reset, an invalidation or a request was rejected: the reason field
// of the audit log's "rejected" events.
const (
	reasonMalformedName    = "malformed_username"
	reasonMalformedToken   = "malformed_token"
	reasonMalformedBody    = "malformed_body"
	reasonUnusablePassword = "unusable_password" // empty, too long, control characters
	reasonPasswordMismatch = "password_mismatch" // the page's two entries differ
	reasonPasswordRefused  = "password_refused"  // by the hub's policy
	reasonUnknownToken     = "unknown_token"     // never issued, used, cancelled or burned
	reasonExpiredToken     = "expired_token"
	reasonTokenInUse       = "token_in_use" // another submission holds it
	reasonUserGone         = "user_gone"    // no longer on the hub, or no longer internal
	reasonHubUnavailable   = worker.ReasonHubUnavailable
	reasonStoreFailed      = worker.ReasonStoreFailed
)

// outcomeOf maps a reason of rejection to the outcome label of the requests
// metric, which is coarser.
var outcomeOf = map[string]string{
	reasonMalformedName:    "bad_request",
	reasonMalformedToken:   "bad_request",
	reasonMalformedBody:    "bad_request",
	reasonUnusablePassword: "bad_password",
	reasonPasswordMismatch: "bad_password",
	reasonPasswordRefused:  "bad_password",
	reasonUnknownToken:     "bad_token",
	reasonExpiredToken:     "bad_token",
	reasonUserGone:         "bad_token",
	reasonTokenInUse:       "busy",
	reasonHubUnavailable:   "hub_unavailable",
	reasonStoreFailed:      "error",
}

// The outcomes of the requests metric besides those of outcomeOf.
const (
	outcomeRequested   = "requested"
	outcomeRedeemed    = "redeemed"
	outcomeInvalidated = "invalidated"
	outcomeThrottled   = "throttled"
	outcomeShown       = "shown"       // the page, rendered
	outcomeNotFound    = "not_found"   // a path under the API that is no call
	outcomeBadMethod   = "bad_method"  // a method the call does not take
	outcomeUnavailable = "unavailable" // the store is not open
)

// tally is what the requests metric records of one request.
type tally struct{ call, outcome string }

type tallyKey struct{}

// track starts the tally of a request of the given call.
func track(r *http.Request, call string) (*http.Request, *tally) {
	t := &tally{call: call}
	return r.WithContext(context.WithValue(r.Context(), tallyKey{}, t)), t
}

// setOutcome records how the request ended; the last word counts.
func setOutcome(r *http.Request, outcome string) {
	if t, ok := r.Context().Value(tallyKey{}).(*tally); ok {
		t.outcome = outcome
	}
}

// setCall renames the call of a request once its body tells what it is.
func setCall(r *http.Request, call string) {
	if t, ok := r.Context().Value(tallyKey{}).(*tally); ok {
		t.call = call
	}
}

// count adds a finished request to the requests metric.
func (t *tally) count() {
	if t.call == "" {
		return // the page's assets
	}
	if t.outcome == "" {
		t.outcome = "other"
	}
	metrics.requests.WithLabelValues(t.call, t.outcome).Inc()
}

// callOf names the call of a request to the API or the page.
func callOf(r *http.Request, api bool) string {
	if api {
		rest, _ := strings.CutPrefix(r.URL.EscapedPath(), apiPrefix)
		switch call, _, _ := strings.Cut(rest, "/"); {
		case call == "forgot":
			return "forgot"
		case call == "reset" && r.Method == http.MethodDelete:
			return "invalidate"
		case call == "reset":
			return "reset"
		}
		return "other"
	}
	seg := strings.TrimPrefix(r.URL.EscapedPath(), pagePrefix)
	if _, ok := pageAssets[seg]; ok {
		return ""
	}
	switch {
	case r.Method != http.MethodPost:
		return "page"
	case seg == "":
		return "page_forgot"
	}
	return "page_reset" // or page_cancel, once the form is read
}

// reject records a rejected request: the user is "" where it is unknown.
func (h *Handler) reject(r *http.Request, reason, user string) {
	setOutcome(r, outcomeOf[reason])
	h.audit.Info("rejected", append(who(r, user), zap.String("reason", reason))...)
}

// rejectToken records the rejection of a token the store refused, with the
// store's reason, and reports that reason.
func (h *Handler) rejectToken(r *http.Request, err error) string {
	reason := reasonUnknownToken
	switch {
	case errors.Is(err, store.ErrInUse):
		reason = reasonTokenInUse
	case errors.Is(err, store.ErrExpired):
		reason = reasonExpiredToken
		metrics.tokens.WithLabelValues(tokenExpired).Inc()
	case !errors.Is(err, store.ErrInvalidToken):
		reason = reasonStoreFailed
		h.logger.Error("reading token", zap.Error(err))
	}
	h.failed(r, reason)
	return reason
}

// throttled records a request refused by a limiter; name is the username
// asked for, or "" when the call has none.
func (h *Handler) throttled(r *http.Request, limiter, name string) {
	setOutcome(r, outcomeThrottled)
	metrics.throttled.WithLabelValues(limiter).Inc()
	if !validUsername(name) {
		name = ""
	}
	h.audit.Info("throttled", append(who(r, name), zap.String("limiter", limiter))...)
}

// who returns the fields that every audit event starts with: the user,
// when known, and the client address.
func who(r *http.Request, user string) []zap.Field {
	fields := make([]zap.Field, 0, 3)
	if user != "" {
		fields = append(fields, zap.String("user", user))
	}
	return append(fields, zap.String("client_ip", clientIP(r)))
}

// success records a request that did what it was asked: requested,
// redeemed or invalidated, which is both the audit event and the outcome.
func (h *Handler) success(r *http.Request, event, user string) {
	setOutcome(r, event)
	h.audit.Info(event, who(r, user)...)
}
