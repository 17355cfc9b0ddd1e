package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
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
	"github.com/mpgate/password-reset/internal/worker"
)

// maxBody caps request bodies.
const maxBody = 64 << 10

// maxUsername caps a username, in bytes.
const maxUsername = 256

// forgot records a reset request in the outbox and answers at once. The
// answer is the same whether or not the user exists: the hub is asked
// later, by the worker.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request, seg string) {
	name, _ := url.PathUnescape(seg) // a bad escape leaves a name request refuses
	err := h.request(w, r, name)
	if err != nil {
		writeText(w, http.StatusUnprocessableEntity, textForgotFailed)
		return
	}
	writeText(w, http.StatusOK, textForgotOK)
}

// Why request refused a reset request.
var (
	errThrottled = errors.New("over the per-address limit")
	errName      = errors.New("malformed username")
	errStore     = errors.New("store failed")
)

// request checks the caller's limit and the name, and records the request
// in the outbox. Over the limit, it sets Retry-After.
func (h *Handler) request(w http.ResponseWriter, r *http.Request, name string) error {
	if ok, wait := h.limits.forgot.Allow(addressKey(r), clock()); !ok {
		h.throttled(r, limitForgot, name)
		setRetryAfter(w, wait)
		return errThrottled
	}
	if !validUsername(name) {
		h.reject(r, reasonMalformedName, "")
		return errName
	}
	id, err := store.NewJobID()
	if err == nil {
		now := clock()
		err = h.shared.store.Enqueue(store.Job{
			ID:          id,
			User:        name,
			RequestedAt: now,
			ClientIP:    clientIP(r),
			NextAt:      now,
		})
	}
	if err != nil {
		h.logger.Error("recording reset request", zap.Error(err))
		h.reject(r, reasonStoreFailed, name)
		return errStore
	}
	metrics.mailsQueued.WithLabelValues(worker.KindReset).Inc()
	h.success(r, outcomeRequested, name)
	h.shared.worker.Wake()
	return nil
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
		h.failed(r, reasonMalformedToken)
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		return
	}
	password, err := readPassword(w, r)
	if err != nil {
		h.failed(r, reasonMalformedBody)
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		return
	}
	if msg := checkPassword(password); msg != "" {
		h.reject(r, reasonUnusablePassword, "")
		writeText(w, http.StatusUnprocessableEntity, msg)
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
		h.failed(r, reasonMalformedToken)
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
	h.reject(r, reason, "")
}

// tooManyFailures reports whether the caller has spent its failure budget,
// and if so sets Retry-After.
func (h *Handler) tooManyFailures(w http.ResponseWriter, r *http.Request) bool {
	blocked, wait := h.limits.failures.Blocked(addressKey(r), clock())
	if blocked {
		h.throttled(r, limitFailures, "")
		setRetryAfter(w, wait)
	}
	return blocked
}

// addressKey is the limiter key of the request's client address.
func addressKey(r *http.Request) string { return limit.AddressKey(clientIP(r)) }

// validUsername reports whether a name can be asked of the hub. Names are
// taken byte for byte as the hub compares them: no case folding and no
// Unicode normalization, so two spellings never map to one account.
// Refused: empty, too long, not UTF-8, control characters, slashes and dot
// names.
func validUsername(name string) bool {
	if name == "" || len(name) > maxUsername || !utf8.ValidString(name) {
		return false
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return false
	}
	for _, c := range name {
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			return false
		}
	}
	return true
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

// maxPassword is the longest password taken, in bytes: hubs hash
// passwords with bcrypt, which ignores every byte past the 72nd, so a longer
// one would be cut short without a word.
const maxPassword = 72

// errBody is any body readPassword refuses.
var errBody = errors.New("malformed body")

// readPassword reads {"password": "..."} from the body: one JSON object,
// at most maxBody bytes, with exactly one "password" key holding a string,
// and nothing after it. Other keys are ignored.
func readPassword(w http.ResponseWriter, r *http.Request) (secret.String, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	// the decoder would turn bytes that are not UTF-8 into U+FFFD, and so
	// set a password other than the one typed
	if err != nil || !utf8.Valid(raw) {
		return "", errBody
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", errBody
	}
	var password *string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", errBody
		}
		if key != "password" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return "", errBody
			}
			continue
		}
		// a second "password" could be read differently by something in
		// between, so it is refused
		if password != nil || dec.Decode(&password) != nil || password == nil {
			return "", errBody // a second one, not a string, or null
		}
	}
	if _, err := dec.Token(); err != nil || password == nil {
		return "", errBody // unterminated object, or no password
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errBody // trailing data after the object
	}
	return secret.String(*password), nil
}

// checkPassword returns the message for a password that can never be set,
// or "". Spaces are kept as typed, at either end too: nothing is changed
// without a word. U+FFFD is refused with the control characters: the JSON
// decoder puts it in place of a lone surrogate such as "\ud800", so a
// password holding it may not be the one that was typed.
func checkPassword(p secret.String) string {
	s := p.Reveal()
	switch {
	case s == "":
		return textEmptyPass
	case len(s) > maxPassword:
		return textLongPass
	case !utf8.ValidString(s):
		return textBadChars
	}
	for _, c := range s {
		if unicode.IsControl(c) || c == utf8.RuneError {
			return textBadChars
		}
	}
	return ""
}
