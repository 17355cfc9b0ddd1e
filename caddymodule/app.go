package caddymodule

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(App{})
}

// appID names the app that the handlers load for themselves.
const appID = "password_reset"

// App opens the stores of a config's password_reset handlers when Caddy
// starts the config, and lets go of them when Caddy stops it. It needs no
// configuration of its own: the handlers load it. Caddy provisions a config
// without starting it when it only validates one, so a validation neither
// takes a store's lock nor sends queued mail.
type App struct {
	handlers []*Handler
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  appID,
		New: func() caddy.Module { return new(App) },
	}
}

func (a *App) add(h *Handler) { a.handlers = append(a.handlers, h) }

// Start checks that handlers sharing a store serve the same hub and site,
// then starts every handler.
func (a *App) Start() error {
	if err := a.checkShared(); err != nil {
		return err
	}
	for i, h := range a.handlers {
		if err := h.start(); err != nil {
			for _, done := range a.handlers[:i] {
				_ = done.stop()
			}
			return err
		}
	}
	return nil
}

// Stop lets go of every handler's store.
func (a *App) Stop() error {
	var first error
	for _, h := range a.handlers {
		if h.shared == nil {
			continue // never started
		}
		if err := h.stop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// checkShared refuses two handlers that share a storage directory but not
// their hub, public URL or token keys: tokens and jobs are keyed by
// username alone, so one site's mail could reset the same name on the
// other site's hub, and one store digests with one set of keys.
func (a *App) checkShared() error {
	type owner struct{ hub, public, keys string }
	seen := map[string]owner{}
	for _, h := range a.handlers {
		dir, err := filepath.Abs(h.Storage)
		if err != nil {
			return fmt.Errorf("password_reset storage: %w", err)
		}
		keys := strings.Join(append([]string{h.TokenKey}, h.PreviousTokenKeys...), " ")
		o := owner{h.HubURL, h.PublicURL, keys}
		if prev, ok := seen[dir]; ok && prev != o {
			return fmt.Errorf("password_reset storage %s is used by two handlers with "+
				"different hub_url, public_url or token keys; give each its own storage", dir)
		}
		seen[dir] = o
	}
	return nil
}

// Interface guards.
var _ caddy.App = (*App)(nil)
