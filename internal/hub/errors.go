package hub

import (
	"errors"
	"net/url"
)

// The errors below are the conditions a caller branches on. Every error the
// Client returns wraps exactly one of ErrNotFound, ErrUnavailable and
// ErrRejected; test with errors.Is.
var (
	// ErrNotFound means the hub has no usable user of that name: the name is
	// not one the client will send, the hub answered a status other than 200
	// that is not a sign of an outage, or its record is for another user.
	// Settings returns it when the hub has no settings API (before 3.24).
	ErrNotFound = errors.New("no such hub user")

	// ErrUnavailable means the hub could not serve the call right now: the
	// network failed or timed out, the hub answered 5xx or 429, refused the
	// service credentials with 401 or 403, redirected, or sent an answer that
	// could not be read. The caller should try again later.
	ErrUnavailable = errors.New("hub unavailable")

	// ErrCredentials means the hub refused the service credentials with 401
	// or 403. Ping wraps it besides ErrUnavailable, so that a check can
	// tell wrong credentials from a hub that is down.
	ErrCredentials = errors.New("hub refused the service credentials")

	// ErrRejected means the hub refused the new password with a 4xx other
	// than 401, 403, 404 and 429, for example because it is too weak. The
	// password is not changed.
	ErrRejected = errors.New("password rejected by hub")
)

// unavailable reports whether an HTTP status says the hub cannot serve calls
// at the moment, whatever the call was about.
func unavailable(code int) bool {
	switch {
	case code == 401, code == 403, code == 429, code >= 500:
		return true
	case code < 200, code >= 300 && code < 400:
		// a redirect is never an answer about a user: the hub URL is wrong
		return true
	}
	return false
}

// withoutURL drops the request URL that net/http puts in its errors, keeping
// errors short and free of the escaped user name.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
