package caddymodule

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/secret"
)

//go:embed page
var pageFiles embed.FS

var pageTmpl = template.Must(template.ParseFS(pageFiles, "page/page.html"))

// pageCSP allows the page its own stylesheet and script, no inline code,
// no connections, and form posts to itself only.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'"

// pageAssets are the files served beside the page, by name.
var pageAssets = map[string]string{
	"style.css": "text/css; charset=utf-8",
	"page.js":   "text/javascript; charset=utf-8",
}

// pageData fills the page template.
type pageData struct {
	State    string // a key of pageTitles
	Title    string
	Error    string
	Field    string // the form field Error is about: "password" or "confirm"
	Policy   *policy
	Back     string // the form's own path, for a way back from a question
	LoginURL string
	Asset    string
	Lifetime string // how long a link works, in words
	User     string // the account a link resets, or the name typed in the request form
	Wait     string // how long to wait before asking again, in words
}

var pageTitles = map[string]string{
	"form":        "Set a new password",
	"changed":     "Password changed",
	"cancelled":   "Request cancelled",
	"unavailable": "Please try again later",
	"invalid":     "This link no longer works",
	"confirm":     "Cancel the reset request?",
	"busy":        "Your password is being changed",
	"throttled":   "Too many attempts",
	"request":     "Reset your password",
	"requested":   "Check your mail",
}

// servePage serves the page the mailed link opens. GET only renders; the
// form posts back to the same address to set the password or to cancel.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	seg := strings.TrimPrefix(r.URL.EscapedPath(), pagePrefix)
	if _, ok := pageAssets[seg]; ok {
		h.serveAsset(w, r, seg)
		return
	}
	if seg == "" {
		h.serveRequest(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if h.tooManyFailures(w, r) {
			h.render(w, http.StatusTooManyRequests, "throttled", "")
			return
		}
		token, ok := parseToken(seg)
		if !ok {
			h.failed(r, reasonMalformedToken)
			h.render(w, http.StatusNotFound, "invalid", "")
			return
		}
		user, err := h.shared.store.Check(token, clock())
		if err != nil {
			if h.rejectToken(r, err) == reasonTokenInUse {
				h.render(w, http.StatusConflict, "busy", "")
				return
			}
			h.render(w, http.StatusNotFound, "invalid", "")
			return
		}
		setOutcome(r, outcomeShown)
		if r.URL.Query().Has("cancel") {
			// a question only: the answer is posted from it
			h.renderPage(w, http.StatusOK, pageData{State: "confirm", Back: pagePrefix + seg})
			return
		}
		h.renderForm(w, r, http.StatusOK, user, "", "")
	case http.MethodPost:
		if h.tooManyFailures(w, r) {
			h.render(w, http.StatusTooManyRequests, "throttled", "")
			return
		}
		h.pagePost(w, r, seg)
	default:
		setOutcome(r, outcomeBadMethod)
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.render(w, http.StatusMethodNotAllowed, "invalid", "")
	}
}

// serveRequest serves the form that asks for a reset by user name. Its
// answer is the same for every well-formed name, as the API's is.
func (h *Handler) serveRequest(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		setOutcome(r, outcomeShown)
		h.render(w, http.StatusOK, "request", "")
		return
	case http.MethodPost:
	default:
		setOutcome(r, outcomeBadMethod)
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.render(w, http.StatusMethodNotAllowed, "request", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if r.ParseForm() != nil {
		h.reject(r, reasonMalformedBody, "")
		h.render(w, http.StatusUnprocessableEntity, "request", "Enter your user name.")
		return
	}
	name := r.PostForm.Get("username")
	// on an error the form comes back with the name as typed, to fix or resend
	again := func(status int, msg string) {
		h.renderPage(w, status, pageData{State: "request", Error: msg, User: name})
	}
	switch err := h.request(w, r, name); {
	case err == nil:
		h.render(w, http.StatusOK, "requested", "")
	case errors.Is(err, errThrottled):
		again(http.StatusTooManyRequests, "There were too many requests from your network. "+
			"Please try again in "+waitInWords(w.Header().Get("Retry-After"))+".")
	case errors.Is(err, errName):
		again(http.StatusUnprocessableEntity, "Enter your user name.")
	default:
		again(http.StatusUnprocessableEntity, textForgotFailed)
	}
}

// pagePost handles the form: set the password or cancel the request.
func (h *Handler) pagePost(w http.ResponseWriter, r *http.Request, seg string) {
	token, ok := parseToken(seg)
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	malformed := ""
	switch {
	case !ok:
		malformed = reasonMalformedToken
	case r.ParseForm() != nil:
		malformed = reasonMalformedBody
	}
	if malformed != "" {
		h.failed(r, malformed)
		h.render(w, http.StatusUnprocessableEntity, "invalid", "")
		return
	}
	if r.PostForm.Get("action") == "cancel" {
		setCall(r, "page_cancel")
		if !h.cancel(r, token) {
			h.render(w, http.StatusUnprocessableEntity, "invalid", "")
			return
		}
		h.render(w, http.StatusOK, "cancelled", "")
		return
	}
	password := secret.String(r.PostForm.Get("password"))
	const bad = http.StatusUnprocessableEntity
	// the form again, for the account the link still resets
	form := func(field, msg string) {
		user, _ := h.shared.store.Check(token, clock())
		h.renderForm(w, r, bad, user, field, msg)
	}
	switch {
	case password.Empty():
		h.reject(r, reasonUnusablePassword, "")
		form("password", "Enter a new password.")
		return
	case password.Reveal() != r.PostForm.Get("confirm"):
		h.reject(r, reasonPasswordMismatch, "")
		form("confirm",
			"The two entries do not match. Type the same password in both fields.")
		return
	}
	if msg := checkPassword(password); msg != "" {
		h.reject(r, reasonUnusablePassword, "")
		form("password", msg)
		return
	}
	switch h.redeem(r, token, password) {
	case redeemed:
		h.render(w, http.StatusOK, "changed", "")
	case refused:
		// the rules may have changed since the form was shown
		h.forgetPolicy()
		form("password",
			"Mission Portal refused this password: it does not meet the password policy. "+
				"Choose a longer or more varied one.")
	case hubDown:
		h.render(w, bad, "unavailable", "")
	case inUse:
		h.render(w, bad, "busy", "")
	default:
		h.render(w, bad, "invalid", "")
	}
}

// renderForm writes the form to set the password of user, with the hub's
// password policy when the hub tells it, and an error about one field.
func (h *Handler) renderForm(w http.ResponseWriter, r *http.Request, status int,
	user, field, msg string) {
	h.renderPage(w, status, pageData{
		State:  "form",
		Error:  msg,
		Field:  field,
		Policy: h.policy(r.Context()),
		User:   user,
	})
}

// waitInWords turns a Retry-After in seconds into words, in whole minutes.
func waitInWords(retryAfter string) string {
	secs, err := strconv.Atoi(retryAfter)
	if err != nil || secs <= 60 {
		return "a minute"
	}
	return inWords(time.Duration((secs+59)/60) * time.Minute)
}

// render writes one state of the page, never echoing what was posted.
func (h *Handler) render(w http.ResponseWriter, status int, state, msg string) {
	h.renderPage(w, status, pageData{State: state, Error: msg})
}

// renderPage writes the page from d, filling in what every state shares.
func (h *Handler) renderPage(w http.ResponseWriter, status int, d pageData) {
	d.Title = pageTitles[d.State]
	d.LoginURL = h.deps.Links.Base.String() + "/"
	d.Asset = pagePrefix
	d.Lifetime = inWords(time.Duration(h.TokenTTL))
	var buf bytes.Buffer
	err := pageTmpl.Execute(&buf, d)
	if err != nil {
		h.logger.Error("rendering page", zap.Error(err))
		writeText(w, http.StatusUnprocessableEntity, textUnprocessed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	pageHeaders(hd)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// serveAsset serves one of pageAssets from the binary.
func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	body, _ := pageFiles.ReadFile("page/" + name)
	hd := w.Header()
	hd.Set("Content-Type", pageAssets[name])
	pageHeaders(hd)
	hd.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(body)
}

// inWords writes a lifetime such as 48h as "48 hours".
func inWords(d time.Duration) string {
	n, unit := int64(d/time.Second), "second"
	switch {
	case d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// pageHeaders keeps the page out of caches, referrers and frames.
func pageHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
}
