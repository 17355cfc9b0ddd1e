package caddymodule

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/limit"
	"github.com/mpgate/password-reset/internal/secret"
	"github.com/mpgate/password-reset/internal/store"
)

// maxBody caps request bodies.
const maxBody = 64 << 10

// maxUsername caps a username, in bytes.
const maxUsername = 256

// forgot records a reset request in the outbox and answers at once. The
// answer is the same whether or not the user exists: the hub is asked
// later, by the worker.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request, seg string) {
	if ok, wait := h.limits.forgot.Allow(addressKey(r), clock()); !ok {
		h.throttled(r, "forgot_per_address")
		setRetryAfter(w, wait)
		writeText(w, http.StatusUnprocessableEntity, textForgotFailed)
		return
	}
	user, ok := parseUsername(seg)
	if !ok {
		writeText(w, http.StatusUnprocessableEntity, textForgotFailed)
		return
	}
	id, err := store.NewJobID()
	if err == nil {
		now := clock()
		err = h.shared.store.Enqueue(store.Job{
			ID:          id,
			User:        user,
			RequestedAt: now,
			ClientIP:    clientIP(r),
			NextAt:      now,
		})
	}
	if err != nil {
		h.logger.Error("recording reset request", zap.Error(err))
		writeText(w, http.StatusUnprocessableEntity, textForgotFailed)
		return
	}
	h.audit.Info("requested", zap.String("user", user), zap.String("client_ip", clientIP(r)))
	h.shared.worker.Wake()
	writeText(w, http.StatusOK, textForgotOK)
}

// reset sets a new password with a token, from a JSON body
// {"password": "..."} whatever the Content-Type says.
func (h *Handler) reset(w http.ResponseWriter, r *http.Request, seg string) {
	if h.tooManyFailures(w, r) {
		writeText(w, http.StatusTooManyRequests, textTooMany)
		return
	}
	token, ok := parseToken(seg)
	if !ok {
		h.failed(r, "malformed token")
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		return
	}
	password, ok := readPassword(w, r)
	if !ok {
		h.failed(r, "malformed body")
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		return
	}
	if password.Empty() {
		writeText(w, http.StatusUnprocessableEntity, textEmptyPass)
		return
	}
	switch h.redeem(r, token, password) {
	case redeemed:
		writeText(w, http.StatusOK, textResetOK)
	case refused:
		writeText(w, http.StatusUnprocessableEntity, textWeakPass)
	case hubDown:
		writeText(w, http.StatusUnprocessableEntity, textHubDown)
	default:
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
	}
}

// invalidate ends every token of the token's user.
func (h *Handler) invalidate(w http.ResponseWriter, r *http.Request, seg string) {
	if h.tooManyFailures(w, r) {
		writeText(w, http.StatusTooManyRequests, textTooMany)
		return
	}
	token, ok := parseToken(seg)
	if !ok {
		h.failed(r, "malformed token")
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		return
	}
	if !h.cancel(r, token) {
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		return
	}
	writeText(w, http.StatusAccepted, textInvalidated)
}

// failed records a failed reset or invalidation: in the audit log, and
// against the caller's failure budget.
func (h *Handler) failed(r *http.Request, reason string) {
	h.limits.failures.Spend(addressKey(r), clock())
	h.audit.Info("rejected", zap.String("reason", reason), zap.String("client_ip", clientIP(r)))
}

// tooManyFailures reports whether the caller has spent its failure budget,
// and if so sets Retry-After.
func (h *Handler) tooManyFailures(w http.ResponseWriter, r *http.Request) bool {
	blocked, wait := h.limits.failures.Blocked(addressKey(r), clock())
	if blocked {
		h.throttled(r, "failures_per_address")
		setRetryAfter(w, wait)
	}
	return blocked
}

// throttled records a request refused by a limiter.
func (h *Handler) throttled(r *http.Request, limiter string) {
	h.audit.Info("throttled", zap.String("limiter", limiter), zap.String("client_ip", clientIP(r)))
}

// addressKey is the limiter key of the request's client address.
func addressKey(r *http.Request) string { return limit.AddressKey(clientIP(r)) }

// parseUsername decodes a path segment into a username. Names are taken
// byte for byte as the hub compares them: no case folding and no Unicode
// normalization, so two spellings never map to one account. Refused:
// empty, too long, not UTF-8, control characters, slashes and dot names.
func parseUsername(seg string) (string, bool) {
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" || len(name) > maxUsername || !utf8.ValidString(name) {
		return "", false
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return "", false
	}
	for _, c := range name {
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			return "", false
		}
	}
	return name, true
}

// parseToken accepts exactly the shape of the tokens the gate issues:
// TokenLen characters of the base64url alphabet.
func parseToken(seg string) (secret.String, bool) {
	if len(seg) != store.TokenLen {
		return "", false
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_'
		if !ok {
			return "", false
		}
	}
	return secret.String(seg), true
}

// readPassword reads {"password": "..."} from the body: one JSON object
// whose password is a string, nothing after it, at most maxBody bytes.
func readPassword(w http.ResponseWriter, r *http.Request) (secret.String, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return "", false
	}
	var body struct {
		Password *string `json:"password"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&body); err != nil || body.Password == nil {
		return "", false
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", false // trailing data after the object
	}
	return secret.String(*body.Password), true
}
