package caddymodule

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
)

// TestBrowserAccessibility reads every state of the page the way a screen
// reader does, from Chromium's accessibility tree, and lays it out on the
// narrowest phone: every control has a name, a field in error is described
// by its message, there is one main region and one heading, and nothing
// needs a sideways scroll.
func TestBrowserAccessibility(t *testing.T) {
	ctx := browser(t)
	s := newStack(t)
	link, _ := tokenOf(t, s.forgot("admin", 1))
	b := newTab(t, ctx, false)
	b.do(chromedp.EmulateViewport(320, 640))

	visit := func(name string, reach func(b *tab)) {
		t.Run(name, func(t *testing.T) {
			b := b.in(t)
			reach(b)
			readable(t, b)
		})
	}
	visit("request form", func(b *tab) { b.open(s.base+pagePrefix, "request") })
	visit("request sent", func(b *tab) {
		// another name: asking for admin again would end the link above
		b.typeIn("username", "somebody")
		b.navigating(chromedp.KeyEvent("\r"))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-state=requested]`)))
	})
	visit("form", func(b *tab) { b.open(link, "form") })
	t.Run("form with JavaScript", func(t *testing.T) {
		b := newTab(t, ctx, true)
		b.do(chromedp.EmulateViewport(320, 640))
		b.open(link, "form")
		b.do(chromedp.WaitVisible(chromedp.CSS(`html[data-js=on] .show`)))
		readable(t, b)
	})
	visit("form with an error", func(b *tab) {
		b.typeIn("password", "Brand-new-pass-45")
		b.typeIn("confirm", "Brand-new-pass-46")
		b.navigating(chromedp.KeyEvent("\r"))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-error=confirm]`)))
		desc := axDescription(b, "confirm")
		if !strings.Contains(desc, "do not match") {
			b.t.Errorf("a screen reader describes the second entry as %q, want its error", desc)
		}
	})
	visit("cancel question", func(b *tab) { b.open(link+"?cancel", "confirm") })
	visit("changed", func(b *tab) {
		b.open(link, "form")
		b.typeIn("password", "Brand-new-pass-45")
		b.typeIn("confirm", "Brand-new-pass-45")
		b.navigating(chromedp.KeyEvent("\r"))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-state=changed]`)))
	})
	visit("used link", func(b *tab) { b.open(link, "invalid") })
}

// axNode is what a test needs of a node of the accessibility tree.
type axNode struct {
	role, name, description string
	dom                     int64
}

// axTree returns the page's accessibility tree, without ignored nodes.
func axTree(b *tab) []axNode {
	b.t.Helper()
	var out []axNode
	b.call(func(ctx context.Context) error {
		tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		if err != nil {
			return err
		}
		for _, n := range tree.Nodes {
			if n.Ignored {
				continue
			}
			out = append(out, axNode{
				role:        axString(n.Role),
				name:        axString(n.Name),
				description: axString(n.Description),
				dom:         int64(n.BackendDOMNodeID),
			})
		}
		return nil
	})
	return out
}

// axString is the text of a value of the tree, "" when it has none.
func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return string(v.Value)
	}
	return s
}

// controls are the roles a person acts on.
var controls = map[string]bool{
	"textbox": true, "button": true, "link": true, "checkbox": true,
}

// readable checks the page as it stands.
func readable(t *testing.T, b *tab) {
	t.Helper()
	mains, headings := 0, 0
	for _, n := range axTree(b) {
		switch {
		case controls[n.role] && strings.TrimSpace(n.name) == "":
			t.Errorf("a %s has no accessible name", n.role)
		case n.role == "main":
			mains++
		case n.role == "heading":
			headings++
		}
	}
	if mains != 1 || headings != 1 {
		t.Errorf("the page has %d main regions and %d headings, want one of each", mains, headings)
	}
	if w := eval[float64](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("at 320 pixels the page is %v pixels too wide", w)
	}
	// small targets are hard to hit on a phone (WCAG 2.2, target size)
	small := eval[[]string](b, `[...document.querySelectorAll(`+
		`"main input:not([type=hidden]), main button, main a.button")]`+
		`.filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 24)`+
		`.map(e => e.id || e.textContent.trim())`)
	if len(small) > 0 {
		t.Errorf("controls under 24 pixels high: %v", small)
	}
}

// axDescription returns the accessible description of the element with the
// given id.
func axDescription(b *tab, id string) string {
	b.t.Helper()
	nodes, err := chromedp.Run(b.ctx, chromedp.Nodes(chromedp.ID(id)))
	if err != nil || len(nodes) == 0 {
		b.t.Fatalf("finding #%s: %v", id, err)
	}
	for _, n := range axTree(b) {
		if n.dom == int64(nodes[0].BackendNodeID) {
			return n.description
		}
	}
	b.t.Fatalf("#%s is not in the accessibility tree", id)
	return ""
}
