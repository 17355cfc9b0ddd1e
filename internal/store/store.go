// Package store keeps the gate's state: reset tokens (as keyed digests only),
// the durable outbox of reset requests waiting for their mail, and the key
// that digests tokens. Store is the small interface a backend implements;
// Badger is the one backend, embedded in the process.
package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/mpgate/password-reset/internal/secret"
)

// ErrInvalidToken is returned for every token that cannot be used: unknown,
// expired, already used, revoked or in use by another redemption. Callers
// answer all of them alike.
var ErrInvalidToken = errors.New("invalid token")

// ErrInUse is returned for a live token that another redemption holds at
// the moment. It wraps ErrInvalidToken, so callers that answer every bad
// token alike need not tell it apart; a page may ask the user to wait.
var ErrInUse = fmt.Errorf("%w: in use by another redemption", ErrInvalidToken)

// ErrExpired is returned for a token presented at or after its expiry, as
// long as its record is kept. It wraps ErrInvalidToken; it is told apart
// only for the audit log and the metrics.
var ErrExpired = fmt.Errorf("%w: expired", ErrInvalidToken)

// ErrLocked is returned by Open when another process holds the storage
// directory.
var ErrLocked = errors.New("storage directory is in use by another process")

// KindChanged is the Kind of a job that tells a user their password was
// changed.
const KindChanged = "changed"

// Job is a mail waiting in the outbox: a reset request waiting for its
// link, or a notice after a reset.
type Job struct {
	// ID names the job for its whole life, across retries.
	ID string `json:"id"`
	// Kind is "" for a reset request, KindChanged for a notice.
	Kind string `json:"kind,omitempty"`
	// User is the username as the client sent it.
	User string `json:"user"`
	// RequestedAt is when the request was accepted; for a notice, when the
	// password was changed.
	RequestedAt time.Time `json:"requested_at"`
	// ClientIP is the address the request (or the change) came from, for
	// the mail and the log.
	ClientIP string `json:"client_ip,omitempty"`
	// Attempts counts the failed tries so far.
	Attempts int `json:"attempts"`
	// NextAt is when the job is due.
	NextAt time.Time `json:"next_at"`
}

// Issued is a freshly issued token. Token is the only copy of the plaintext.
type Issued struct {
	Token   secret.String
	Expires time.Time
}

// Store is what the gate needs from its state. Every method is safe for
// concurrent use. Times are passed in so that callers own the clock.
type Store interface {
	// Enqueue records a job durably; it is due at job.NextAt.
	Enqueue(job Job) error
	// Due returns up to max jobs due at now, oldest due first.
	Due(now time.Time, max int) ([]Job, error)
	// NextDue returns when the earliest job is due; ok is false when the
	// outbox is empty.
	NextDue() (at time.Time, ok bool, err error)
	// Reschedule stores the job again, due at job.NextAt, replacing its
	// earlier entry.
	Reschedule(old, job Job) error
	// Done removes the job from the outbox.
	Done(job Job) error
	// Depth returns the number of jobs in the outbox.
	Depth() (int, error)

	// Issue makes a new token for user that expires at now+ttl, revoking
	// the user's earlier tokens.
	Issue(user string, now time.Time, ttl time.Duration) (Issued, error)
	// Revoke removes one token, if it still exists.
	Revoke(token secret.String) error
	// Check returns the user of a live token without changing anything.
	Check(token secret.String, now time.Time) (user string, err error)
	// Reserve holds a live token for one redemption and returns the
	// reservation, which names the token's user. Of concurrent
	// reservations of one user's tokens at most one succeeds; the others,
	// and Check and Invalidate of those tokens, get ErrInUse until the
	// holder lets go. The hold lives in memory: a restart frees the token.
	Reserve(token secret.String, now time.Time) (Reservation, error)
	// Release lets go of a reservation and makes the token usable again.
	// A failed submission (failed) is counted, and at maxFailures of them
	// the token is burned. A reservation let go already changes nothing.
	Release(r Reservation, failed bool, maxFailures int) error
	// Consume removes every token of the reservation's user, ends the
	// user's requests made up to now and lets go of the reservation. A
	// reservation let go already gets ErrInvalidToken.
	Consume(r Reservation, now time.Time) error
	// Invalidate removes every token of the user of a live token, ends the
	// user's requests made up to now, and returns that user.
	Invalidate(token secret.String, now time.Time) (user string, err error)
	// Ended reports whether a reset or an invalidation ended the user's
	// requests after one made at requested: its mail is no longer wanted.
	Ended(user string, requested time.Time) (bool, error)

	// MailAllowed reports whether one more mail to user fits every budget.
	MailAllowed(user string, now time.Time, budgets []Budget) (bool, error)
	// MailSent records a mail sent to user at now, for the budgets.
	MailSent(user string, now time.Time, budgets []Budget) error

	// OutboxJobs summarizes the outbox at now and returns up to list of
	// its jobs, earliest due first.
	OutboxJobs(now time.Time, list int) (OutboxSummary, []Job, error)
	// MakeDue makes every job waiting past now due at now and returns how
	// many it moved. It must not run while a job is being processed.
	MakeDue(now time.Time) (int, error)
	// EndUser revokes every token of user and ends the user's requests
	// made up to now. While a redemption holds the user, it changes
	// nothing and returns ErrInUse.
	EndUser(user string, now time.Time) (UserEnded, error)
	// Purge deletes expired tokens and entries no longer needed at now.
	Purge(now time.Time, budgets []Budget) (Purged, error)

	// Close releases the store.
	Close() error
}
