package caddymodule

import (
	"net/http"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Paths the module answers itself.
const (
	apiPrefix  = "/api/auth/password/"
	pagePrefix = "/password-reset/"
)

// The API's fixed answers.
const (
	textForgotOK     = "Reset password email successfully sent."
	textForgotFailed = "We are unable to reset the password at this time."
	textResetOK      = "Password successfully changed."
	textInvalidated  = "Reset password token successfully invalidated."
	textUnprocessed  = "Unable to process request."
	textTooMany      = "We have detected multiple unsuccessful reset password attempts."
	textNotFound     = "Not found."
	textEmptyPass    = "The new password must not be empty."
	textLongPass     = "The new password must be at most 72 bytes long."
	textBadChars     = "The new password must not contain control characters or invalid characters."
	textWeakPass     = "The new password does not meet the password policy."
	textHubDown      = "The password cannot be changed at this time. Please try again later."
)

// ServeHTTP answers the reset API and page and passes everything else on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	api := guarded(r)
	if !api && !strings.HasPrefix(r.URL.Path, pagePrefix) {
		return next.ServeHTTP(w, r)
	}
	r, t := track(r, callOf(r, api))
	defer t.count()
	sh := h.started()
	if sh == nil || !sh.enter() {
		// not started yet, or stopped under this request
		setOutcome(r, outcomeUnavailable)
		switch {
		case !api:
			h.render(w, http.StatusUnprocessableEntity, "unavailable", "")
		case strings.Contains(r.URL.Path, "/forgot/"):
			writeText(w, http.StatusUnprocessableEntity, textForgotFailed)
		default:
			writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		}
		return nil
	}
	defer sh.leave()
	if api {
		h.serveAPI(w, r)
	} else {
		h.servePage(w, r)
	}
	return nil
}

// guarded reports whether a request is under the reset API in any spelling
// that the hub might read as such (doubled slashes, dot segments, escapes,
// letter case), in its raw form as the proxy forwards it or decoded and
// cleaned as a server may read it: none of those may reach the hub.
func guarded(r *http.Request) bool {
	raw := r.URL.EscapedPath()
	if !strings.Contains(strings.ToLower(raw), "password") &&
		!strings.Contains(strings.ToLower(r.URL.Path), "password") {
		return false // the fast way out for nearly all traffic
	}
	for _, p := range []string{raw, r.URL.Path, path.Clean("/" + r.URL.Path)} {
		if underAPI(p) {
			return true
		}
	}
	return false
}

// underAPI reports whether p, lowercased with its slashes collapsed, is the
// API's prefix or under it.
func underAPI(p string) bool {
	p = strings.ToLower(p)
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return strings.HasPrefix(p+"/", apiPrefix)
}

// serveAPI routes the three calls. Only the exact escaped spelling of a
// path reaches them; every other guarded path is not found.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), apiPrefix)
	if !ok {
		setOutcome(r, outcomeNotFound)
		writeText(w, http.StatusNotFound, textNotFound)
		return
	}
	call, seg, _ := strings.Cut(rest, "/")
	switch call {
	case "forgot":
		if r.Method != http.MethodPost {
			setOutcome(r, outcomeBadMethod)
			notAllowed(w, "POST")
			return
		}
		h.forgot(w, r, seg)
	case "reset":
		switch r.Method {
		case http.MethodPost:
			h.reset(w, r, seg)
		case http.MethodDelete:
			h.invalidate(w, r, seg)
		default:
			setOutcome(r, outcomeBadMethod)
			notAllowed(w, "POST, DELETE")
		}
	default:
		setOutcome(r, outcomeNotFound)
		writeText(w, http.StatusNotFound, textNotFound)
	}
}

// writeText sends one of the API's fixed texts. The headers are the same
// for every answer, so no header tells one case from another.
func writeText(w http.ResponseWriter, status int, text string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

func notAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeText(w, http.StatusMethodNotAllowed, "Method not allowed.")
}

// clientIP is the client's address as Caddy determined it, which honours
// the server's trusted_proxies.
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}
