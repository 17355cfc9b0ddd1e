package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var update = flag.Bool("update", false, "rewrite the Caddyfile golden files of valid configs")

// TestCaddyfileGolden adapts and provisions every testdata/caddyfile/*.caddyfile.
// Its .want file holds either "error: " and a part of the expected error, or,
// for a valid file, the password_reset handler's JSON.
func TestCaddyfileGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile/*.caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".caddyfile")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			wantFile := strings.TrimSuffix(file, ".caddyfile") + ".want"
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			storage := t.TempDir()
			text := strings.ReplaceAll(string(raw), "{{STORAGE}}", storage)
			handler, err := adaptAndProvision(text)
			wantErr, isErr := strings.CutPrefix(strings.TrimSpace(string(want)), "error: ")
			switch {
			case isErr && err == nil:
				t.Fatalf("config accepted, want error %q", wantErr)
			case isErr:
				if !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("error = %q, want it to contain %q", err, wantErr)
				}
				checkNoSecret(t, err.Error())
			case err != nil:
				t.Fatalf("error = %v, want the config accepted", err)
			default:
				got := strings.ReplaceAll(handler, storage, "{{STORAGE}}")
				if *update {
					_ = os.WriteFile(wantFile, []byte(got), 0o644)
					return
				}
				if got != string(want) {
					t.Errorf("handler JSON =\n%s\nwant\n%s", got, want)
				}
			}
		})
	}
}

// adaptAndProvision adapts a Caddyfile and provisions it without serving,
// and returns the password_reset handler's JSON.
func adaptAndProvision(text string) (string, error) {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), nil)
	if err != nil {
		return "", err
	}
	if err := caddy.Validate(mustConfig(cfg)); err != nil {
		return "", err
	}
	var tree any
	if err := json.Unmarshal(cfg, &tree); err != nil {
		return "", err
	}
	h := findHandler(tree)
	out, err := json.MarshalIndent(h, "", "\t")
	return string(out) + "\n", err
}

func mustConfig(raw []byte) *caddy.Config {
	var c caddy.Config
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&c); err != nil {
		panic(err)
	}
	return &c
}

// findHandler returns the first JSON object whose handler is password_reset.
func findHandler(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x["handler"] == "password_reset" {
			return x
		}
		for _, c := range x {
			if h := findHandler(c); h != nil {
				return h
			}
		}
	case []any:
		for _, c := range x {
			if h := findHandler(c); h != nil {
				return h
			}
		}
	}
	return nil
}

// checkNoSecret fails when a configured secret shows in an error.
func checkNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{"hub_password secret", ": secret", "\"secret\"", "hunter2"} {
		if strings.Contains(s, secret) {
			t.Errorf("error %q shows a secret", s)
		}
	}
}
