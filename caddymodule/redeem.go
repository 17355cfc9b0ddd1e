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
	user, err := st.Reserve(token, clock(), h.lease)
	if err != nil {
		if !errors.Is(err, store.ErrInvalidToken) {
			h.logger.Error("reserving token", zap.Error(err))
		}
		h.failed(r, "bad token")
		if errors.Is(err, store.ErrInUse) {
			return inUse
		}
		return invalidToken
	}
	log := h.audit.With(zap.String("user", user), zap.String("client_ip", clientIP(r)))

	// finish the change even if the client goes away: the hub's answer
	// decides what happens to the token
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), hubCallTimeout)
	defer cancel()
	err = h.hub.SetPassword(ctx, user, password.Reveal())
	switch {
	case err == nil:
		if err := st.Consume(token, user, clock()); err != nil {
			h.logger.Error("consuming token after a password change", zap.Error(err))
		}
		log.Info("redeemed")
		h.notifyChanged(r, user)
		return redeemed
	case errors.Is(err, hub.ErrRejected):
		if err := st.Release(token, true, h.Limits.FailuresPerToken); err != nil {
			h.logger.Error("releasing token", zap.Error(err))
		}
		h.limits.failures.Spend(addressKey(r), clock())
		log.Info("rejected", zap.String("reason", "password refused by the hub"))
		return refused
	case errors.Is(err, hub.ErrNotFound):
		// the account is gone or no longer internal: nothing to reset
		if err := st.Consume(token, user, clock()); err != nil {
			h.logger.Error("consuming token of a missing user", zap.Error(err))
		}
		log.Info("rejected", zap.String("reason", "user no longer on the hub"))
		return invalidToken
	default:
		if err := st.Release(token, false, 0); err != nil {
			h.logger.Error("releasing token", zap.Error(err))
		}
		log.Warn("hub unavailable for a password change", zap.Error(err))
		return hubDown
	}
}

// cancel ends every token of the token's user; it reports false for a
// token that cannot be used.
func (h *Handler) cancel(r *http.Request, token secret.String) bool {
	user, err := h.shared.store.Invalidate(token, clock())
	if err != nil {
		if !errors.Is(err, store.ErrInvalidToken) {
			h.logger.Error("invalidating token", zap.Error(err))
		}
		h.failed(r, "bad token")
		return false
	}
	h.audit.Info("invalidated", zap.String("user", user), zap.String("client_ip", clientIP(r)))
	return true
}

// notifyChanged queues the notice that the user's password was changed, so
// that a reset the user did not make does not go unseen.
func (h *Handler) notifyChanged(r *http.Request, user string) {
	id, err := store.NewJobID()
	if err == nil {
		now := clock()
		err = h.shared.store.Enqueue(store.Job{ID: id, Kind: store.KindChanged, User: user,
			RequestedAt: now, ClientIP: clientIP(r), NextAt: now})
	}
	if err != nil {
		h.logger.Error("queueing the notice of a changed password", zap.Error(err))
		return
	}
	h.shared.worker.Wake()
}
