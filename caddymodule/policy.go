package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/hub"
)

// How the page learns the hub's password policy. The policy only helps
// the user choose: the hub's answer to the change itself decides.
const (
	// policyTTL is how long a policy read from the hub is shown before it
	// is read again.
	policyTTL = 5 * time.Minute
	// policyRetry is how long a failed read is remembered, so that a hub
	// that is down does not slow down every page.
	policyRetry = 30 * time.Second
	// policyWait bounds one read, so that a slow hub delays a page by no
	// more than this.
	policyWait = 2 * time.Second
)

// policy is the part of the hub's settings that the page shows as hints.
type policy struct {
	// MinLength is the least number of characters; 0 for no rule.
	MinLength int
	// Classes is how many of lowercase, uppercase, digits and other
	// characters a password needs; 0 or 1 for no rule.
	Classes int
}

// LengthHint returns the length rule in words, or "".
func (p *policy) LengthHint() string {
	if p == nil || p.MinLength <= 1 {
		return ""
	}
	return fmt.Sprintf("At least %d characters", p.MinLength)
}

// ClassesHint returns the complexity rule in words, or "".
func (p *policy) ClassesHint() string {
	switch {
	case p == nil || p.Classes <= 1:
		return ""
	case p.Classes >= 4:
		return "Lowercase and uppercase letters, digits and other characters"
	}
	return fmt.Sprintf("At least %d of: lowercase letters, uppercase letters, digits, "+
		"other characters", p.Classes)
}

// policyCache keeps the last policy read from one hub.
type policyCache struct {
	mu   sync.Mutex
	p    *policy // nil when the hub did not tell
	next time.Time
}

// policies holds a policyCache per hub URL.
var policies sync.Map

// policy returns the hub's password policy, or nil when the hub cannot tell
// now; it never fails the page.
func (h *Handler) policy(ctx context.Context) *policy {
	v, _ := policies.LoadOrStore(h.HubURL, new(policyCache))
	c := v.(*policyCache)
	c.mu.Lock()
	defer c.mu.Unlock()
	if clock().Before(c.next) {
		return c.p
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), policyWait)
	defer cancel()
	s, err := h.hub.Settings(ctx)
	if err != nil {
		h.logger.Debug("reading the hub's password policy", zap.Error(err))
		wait := policyRetry
		if errors.Is(err, hub.ErrNotFound) {
			wait = policyTTL // a hub older than its settings API
		}
		c.p, c.next = nil, clock().Add(wait)
		return nil
	}
	c.p = &policy{
		MinLength: min(max(s.MinPasswordLength, 0), maxPassword),
		Classes:   min(max(s.PasswordComplexity, 0), 4),
	}
	c.next = clock().Add(policyTTL)
	return c.p
}

// forgetPolicy makes the next page read the policy afresh: the hub refused
// a password, perhaps by a rule that changed since the last read.
func (h *Handler) forgetPolicy() {
	if v, ok := policies.Load(h.HubURL); ok {
		c := v.(*policyCache)
		c.mu.Lock()
		c.next = time.Time{}
		c.mu.Unlock()
	}
}
