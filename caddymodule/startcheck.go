package caddymodule

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/hub"
)

// A handler that starts checks, in the background, that the hub answers
// and takes the service account, and that the SMTP server answers. A
// failed check is a warning, never a failure: requests are accepted, and
// the outbox waits for the part to come back.

// checkTimeout bounds one check.
const checkTimeout = 30 * time.Second

// recheckAfter is how long a passed check stands for every handler with
// the same settings, so that a storm of reloads, or many sites on one hub,
// check a part once.
const recheckAfter = time.Minute

// The hints logged with a failed check: what the operator should look at.
const (
	hintHubDown = "check hub_url, hub_tls_ca and that Mission Portal is running; " +
		"reset mails wait in the outbox until the hub answers"
	hintHubCredentials = "check hub_user and hub_password: the account must be an internal " +
		"admin without two-factor authentication; reset mails wait in the outbox meanwhile"
	hintSMTP = "check the smtp server, tls, username and password; " +
		"reset mails wait in the outbox until the server answers"
)

// checks holds the checks running or passed lately, by a digest of the
// settings they check.
var checks = struct {
	sync.Mutex
	m map[[sha256.Size]byte]checkState
}{m: map[[sha256.Size]byte]checkState{}}

type checkState struct {
	running bool
	passed  time.Time
}

// checkParts starts the checks of the hub and of the SMTP server, each
// unless the same check is running or passed lately. Which checks run is
// settled before it returns.
func (h *Handler) checkParts() {
	hubKey := checkKey("hub", h.HubURL, h.HubUser, h.HubPassword, h.HubTLSCA,
		strconv.FormatBool(h.HubTLSInsecure))
	if claimCheck(hubKey) {
		log := h.logger.With(zap.String("check", "hub"))
		go runCheck(hubKey, h.hub.Ping, func(err error) {
			hint := hintHubDown
			if errors.Is(err, hub.ErrCredentials) {
				hint = hintHubCredentials
			}
			log.Warn("hub check failed", zap.String("hint", hint), zap.Error(err))
		}, func() { log.Info("hub check passed") })
	}
	mail, ok := h.deps.Mail.(interface{ Ping(context.Context) error })
	if !ok {
		return
	}
	smtpKey := checkKey("smtp", h.SMTP.Server, h.SMTP.TLS, h.SMTP.Username, h.SMTP.Password)
	if claimCheck(smtpKey) {
		log := h.logger.With(zap.String("check", "smtp"))
		go runCheck(smtpKey, mail.Ping, func(err error) {
			log.Warn("smtp check failed", zap.String("hint", hintSMTP), zap.Error(err))
		}, func() { log.Info("smtp check passed") })
	}
}

// runCheck runs a claimed check and reports how it went.
func runCheck(key [sha256.Size]byte, ping func(context.Context) error, failed func(error), passed func()) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	err := ping(ctx)
	checks.Lock()
	if err == nil {
		checks.m[key] = checkState{passed: clock()}
	} else {
		// a failure does not stand: the next start checks again
		delete(checks.m, key)
	}
	checks.Unlock()
	if err != nil {
		failed(err)
		return
	}
	passed()
}

// claimCheck reports whether the check of key is to run, and marks it
// running if so.
func claimCheck(key [sha256.Size]byte) bool {
	checks.Lock()
	defer checks.Unlock()
	st := checks.m[key]
	if st.running || !st.passed.IsZero() && clock().Sub(st.passed) < recheckAfter {
		return false
	}
	checks.m[key] = checkState{running: true}
	return true
}

// checkKey digests the settings of a check, so that the table of checks
// holds no credential.
func checkKey(parts ...string) [sha256.Size]byte {
	return sha256.Sum256([]byte(strings.Join(parts, "\x00")))
}
