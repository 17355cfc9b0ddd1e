package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/secret"
	"github.com/mpgate/password-reset/internal/store"
	"github.com/mpgate/password-reset/internal/worker"
)

// outcome is how a redemption ended.
type outcome int

const (
	redeemed     outcome = iota // the hub took the password; the user's tokens are gone
	invalidToken                // unknown, expired, used or revoked
	refused                     // the hub refused the password; the token still works
	hubDown                     // the hub could not be asked; the token still works
	inUse                       // another redemption holds the token right now
)

// hubCallTimeout bounds a password change on the hub.
const hubCallTimeout = 30 * time.Second

// redeem changes the password of the token's user: reserve the token, set
// the password on the hub, then consume the token (and every other of the
// user's) or release it for another try.
func (h *Handler) redeem(r *http.Request, token, password secret.String) outcome {
	st := h.shared.store
	res, err := st.Reserve(token, clock())
	if err != nil {
		if h.rejectToken(r, err) == reasonTokenInUse {
			return inUse
		}
		return invalidToken
	}
	user := res.User
	// the reservation holds every token of the user until it is let go:
	// on every path below, and here should one of them panic
	defer func() { _ = st.Release(res, false, 0) }() // a no-op once let go

	// finish the change even if the client goes away: the hub's answer
	// decides what happens to the token
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), hubCallTimeout)
	defer cancel()
	err = h.hub.SetPassword(ctx, user, password.Reveal())
	switch {
	case err == nil:
		// the notice of the change is queued with the token's end, in one
		// synced commit
		notice, err := changedNotice(r, user)
		if err == nil {
			err = st.ConsumeAndEnqueue(res, clock(), notice)
		} else {
			// without a notice the token must still end
			err = errors.Join(err, st.Consume(res, clock()))
		}
		if err != nil {
			h.logger.Error("consuming token after a password change", zap.Error(err))
		} else {
			metrics.mailsQueued.WithLabelValues(worker.KindChanged).Inc()
			h.shared.worker.Wake()
		}
		metrics.tokens.WithLabelValues(tokenRedeemed).Inc()
		h.success(r, outcomeRedeemed, user)
		return redeemed
	case errors.Is(err, hub.ErrRejected):
		if err := st.Release(res, true, h.Limits.FailuresPerToken); err != nil {
			h.logger.Error("releasing token", zap.Error(err))
		}
		h.limits.failures.Spend(addressKey(r), clock())
		h.reject(r, reasonPasswordRefused, user)
		return refused
	case errors.Is(err, hub.ErrNotFound):
		// the account is gone or no longer internal: nothing to reset
		if err := st.Consume(res, clock()); err != nil {
			h.logger.Error("consuming token of a missing user", zap.Error(err))
		}
		h.reject(r, reasonUserGone, user)
		return invalidToken
	default:
		if err := st.Release(res, false, 0); err != nil {
			h.logger.Error("releasing token", zap.Error(err))
		}
		h.logger.Warn("hub unavailable for a password change", zap.Error(err))
		h.reject(r, reasonHubUnavailable, user)
		return hubDown
	}
}

// cancel ends every token of the token's user; it reports false for a
// token that cannot be used.
func (h *Handler) cancel(r *http.Request, token secret.String) bool {
	user, err := h.shared.store.Invalidate(token, clock())
	if err != nil {
		h.rejectToken(r, err)
		return false
	}
	metrics.tokens.WithLabelValues(tokenInvalidated).Inc()
	h.success(r, outcomeInvalidated, user)
	return true
}

// changedNotice is the job of the notice that the user's password was
// changed, so that a reset the user did not make does not go unseen.
func changedNotice(r *http.Request, user string) (store.Job, error) {
	id, err := store.NewJobID()
	if err != nil {
		return store.Job{}, err
	}
	now := clock()
	return store.Job{ID: id, Kind: store.KindChanged, User: user,
		RequestedAt: now, ClientIP: clientIP(r), NextAt: now}, nil
}
