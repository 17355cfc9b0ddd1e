// Package secret holds values that must never reach a log line, an error
// text or a response by accident: reset tokens, links that carry them,
// passwords and credentials.
package secret

import "fmt"

// Redacted is what every printed form of a String shows.
const Redacted = "[redacted]"

// String is a secret text. Its String, GoString, Format, MarshalText and
// MarshalJSON forms all print Redacted, so passing it to a logger or to
// fmt by mistake leaks nothing; Reveal is the one way to read it.
type String string

// Reveal returns the secret text itself, for the few places that must use it.
func (s String) Reveal() string { return string(s) }

// Empty reports whether the secret is the empty string.
func (s String) Empty() bool { return s == "" }

// String returns Redacted.
func (s String) String() string { return Redacted }

// GoString returns Redacted, for %#v.
func (s String) GoString() string { return Redacted }

// Format prints Redacted whatever the verb.
func (s String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalText returns Redacted, so encoders that use it print nothing secret.
func (s String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalJSON returns Redacted as a JSON string.
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
