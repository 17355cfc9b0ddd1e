package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/store"
	"github.com/mpgate/password-reset/internal/worker"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminPrefix is where the operator's calls live on Caddy's admin endpoint.
const adminPrefix = "/password_reset/"

// maxListed caps the jobs one outbox answer lists.
const maxListed = 1000

// retryWait bounds how long a retry waits for the worker to finish the job
// in hand.
const retryWait = 30 * time.Second

// adminAPI serves the operator's calls on the stores open in this process,
// on Caddy's admin endpoint: the outbox, retrying it now, revoking a
// user's tokens and requests, and purging dead entries. A storage query
// parameter names one storage directory; without it a call covers them all.
type adminAPI struct {
	log *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.password_reset",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision sets up the logger.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger(a)
	return nil
}

// Routes returns the one route under which every call lives.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminPrefix, Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// serve routes the calls by their escaped path, so that a user name keeps
// every byte it was sent with.
func (a *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), adminPrefix)
	if seg, ok := strings.CutPrefix(rest, "revoke/"); ok {
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.revoke(w, r, seg)
	}
	switch rest {
	case "outbox":
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.outbox(w, r)
	case "retry":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.retry(w, r)
	case "purge":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.purge(w, r)
	}
	return apiError(http.StatusNotFound, "not found", nil)
}

// outboxView is one storage's outbox as the operator sees it.
type outboxView struct {
	Storage string `json:"storage"`
	Depth   int    `json:"depth"`
	Due     int    `json:"due"`
	// the oldest request and its age, and when the next job is due; null
	// when the outbox is empty
	OldestRequestedAt *time.Time `json:"oldest_requested_at"`
	OldestAgeSeconds  *float64   `json:"oldest_age_seconds"`
	NextDueAt         *time.Time `json:"next_due_at"`
	// the jobs, only when asked for
	Jobs []jobView `json:"jobs,omitempty"`
	// how many jobs are not listed, past maxListed
	JobsNotListed int `json:"jobs_not_listed,omitempty"`
}

// jobView is a waiting job: whose, what kind, how far along. A job holds
// no token.
type jobView struct {
	User        string    `json:"user"`
	Kind        string    `json:"kind"`
	Attempts    int       `json:"attempts"`
	RequestedAt time.Time `json:"requested_at"`
	NextAt      time.Time `json:"next_at"`
}

// outbox answers GET /password_reset/outbox[?jobs=true]. Users are named
// only when the jobs are asked for.
func (a *adminAPI) outbox(w http.ResponseWriter, r *http.Request) error {
	list := 0
	if v := r.URL.Query().Get("jobs"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return apiError(http.StatusBadRequest, "jobs must be true or false", nil)
		}
		if on {
			list = maxListed
		}
	}
	return a.each(w, r, func(o openStorage) (any, error) {
		now := clock()
		sum, jobs, err := o.sh.store.OutboxJobs(now, list)
		if err != nil {
			return nil, apiError(http.StatusInternalServerError, "reading the outbox failed", err)
		}
		v := outboxView{Storage: o.dir, Depth: sum.Depth, Due: sum.Due}
		if sum.Depth > 0 {
			age := now.Sub(sum.Oldest).Round(time.Millisecond).Seconds()
			v.OldestRequestedAt, v.OldestAgeSeconds, v.NextDueAt = &sum.Oldest, &age, &sum.NextAt
		}
		for _, j := range jobs {
			v.Jobs = append(v.Jobs, jobView{j.User, worker.KindOf(j), j.Attempts, j.RequestedAt, j.NextAt})
		}
		if list > 0 {
			v.JobsNotListed = sum.Depth - len(jobs)
		}
		return v, nil
	})
}

// retry answers POST /password_reset/retry: every waiting job is due now,
// and the worker is at it.
func (a *adminAPI) retry(w http.ResponseWriter, r *http.Request) error {
	return a.each(w, r, func(o openStorage) (any, error) {
		ctx, cancel := context.WithTimeout(r.Context(), retryWait)
		defer cancel()
		n, err := o.sh.worker.RetryNow(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return nil, apiError(http.StatusServiceUnavailable,
				"the mail worker is busy with a job; try again", err)
		case err != nil:
			return nil, apiError(http.StatusInternalServerError, "making jobs due failed", err)
		}
		a.log.Info("outbox retried now", zap.String("storage", o.dir), zap.Int("jobs", n))
		return struct {
			Storage string `json:"storage"`
			MadeDue int    `json:"made_due"`
		}{o.dir, n}, nil
	})
}

// revoke answers POST /password_reset/revoke/<username>: the user's tokens
// stop working and the user's waiting requests are dropped. The name is
// one path segment, percent-encoded as needed, taken byte for byte.
func (a *adminAPI) revoke(w http.ResponseWriter, r *http.Request, seg string) error {
	name, err := url.PathUnescape(seg)
	if err != nil || !validUsername(name) {
		return apiError(http.StatusBadRequest, "malformed username", nil)
	}
	return a.each(w, r, func(o openStorage) (any, error) {
		got, err := o.sh.store.EndUser(name, clock())
		switch {
		case errors.Is(err, store.ErrInUse):
			return nil, apiError(http.StatusConflict,
				"a reset of this user is waiting on the hub; try again", err)
		case err != nil:
			return nil, apiError(http.StatusInternalServerError, "revoking failed", err)
		}
		a.log.Named("audit").Info("revoked by the operator", zap.String("user", name),
			zap.String("storage", o.dir), zap.Bool("token", got.Token),
			zap.Int("requests", got.Requests))
		return struct {
			Storage       string `json:"storage"`
			TokenRevoked  bool   `json:"token_revoked"`
			RequestsEnded int    `json:"requests_ended"`
		}{o.dir, got.Token, got.Requests}, nil
	})
}

// purge answers POST /password_reset/purge with the counts of what it
// deleted.
func (a *adminAPI) purge(w http.ResponseWriter, r *http.Request) error {
	return a.each(w, r, func(o openStorage) (any, error) {
		got, err := o.sh.store.Purge(clock(), o.deps.Budgets)
		if err != nil {
			return nil, apiError(http.StatusInternalServerError, "purging failed", err)
		}
		a.log.Info("storage purged", zap.String("storage", o.dir), zap.Int("tokens", got.Tokens),
			zap.Int("ended", got.Ended), zap.Int("budgets", got.Budgets))
		return struct {
			Storage       string `json:"storage"`
			ExpiredTokens int    `json:"expired_tokens"`
			EndedMarkers  int    `json:"ended_markers"`
			MailBudgets   int    `json:"mail_budgets"`
		}{o.dir, got.Tokens, got.Ended, got.Budgets}, nil
	})
}

// each runs fn on every storage the call covers, holding each open while
// fn runs, and answers {"storages": [...]} with what fn returned.
func (a *adminAPI) each(w http.ResponseWriter, r *http.Request, fn func(openStorage) (any, error)) error {
	list, err := openStorages(r.URL.Query().Get("storage"))
	if err != nil {
		return err
	}
	out := []any{}
	for _, o := range list {
		if !o.sh.enter() {
			continue // closed since it was listed
		}
		v, err := fn(o)
		o.sh.leave()
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(struct {
		Storages []any `json:"storages"`
	}{out})
}

// openStorage is a storage directory open in this process.
type openStorage struct {
	dir  string
	sh   *shared
	deps *worker.Deps
}

// openStorages returns the started storages, sorted by directory: the one
// at dir, or all of them when dir is empty.
func openStorages(dir string) ([]openStorage, error) {
	var all []openStorage
	pool.Range(func(key, val any) bool {
		sh := val.(*shared)
		// a storage whose first handler has not started has no worker yet
		if d := sh.current(); d != nil {
			all = append(all, openStorage{key.(string), sh, d})
		}
		return true
	})
	slices.SortFunc(all, func(a, b openStorage) int { return strings.Compare(a.dir, b.dir) })
	if dir == "" {
		return all, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, apiError(http.StatusBadRequest, "storage is not a usable path", nil)
	}
	for _, o := range all {
		if o.dir == abs {
			return []openStorage{o}, nil
		}
	}
	return nil, apiError(http.StatusNotFound, "no password_reset storage is open at that path", nil)
}

// allow refuses a request whose method is not the one given.
func allow(w http.ResponseWriter, r *http.Request, method string) error {
	if r.Method == method {
		return nil
	}
	w.Header().Set("Allow", method)
	return apiError(http.StatusMethodNotAllowed, "method not allowed", nil)
}

// apiError is an answer of Caddy's admin endpoint with a fixed message;
// cause, which may say more, goes only to Caddy's log.
func apiError(status int, message string, cause error) error {
	if cause == nil {
		cause = errors.New(message)
	}
	return caddy.APIError{HTTPStatus: status, Message: message, Err: fmt.Errorf("password_reset: %w", cause)}
}

// Interface guards.
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
