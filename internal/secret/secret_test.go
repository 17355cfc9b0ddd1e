package secret_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mpgate/password-reset/internal/secret"
)

func TestStringNeverPrints(t *testing.T) {
	const raw = "v1twknmrLWos-very-secret"
	s := secret.String(raw)
	js, err := json.Marshal(struct{ T secret.String }{s})
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{
		"%v":            fmt.Sprintf("%v", s),
		"%s":            fmt.Sprintf("%s", s),
		"%q":            fmt.Sprintf("%q", s),
		"%x":            fmt.Sprintf("%x", s),
		"%#v":           fmt.Sprintf("%#v", s),
		"%+v in struct": fmt.Sprintf("%+v", struct{ T secret.String }{s}),
		"json":          string(js),
		"wrapped error": fmt.Errorf("using %v: %w", s, errors.New("x")).Error(),
	}
	for name, got := range forms {
		if strings.Contains(got, raw) {
			t.Errorf("%s form = %q, want no secret in it", name, got)
		}
	}
	if s.Reveal() != raw {
		t.Errorf("Reveal() = %q, want %q", s.Reveal(), raw)
	}
}
