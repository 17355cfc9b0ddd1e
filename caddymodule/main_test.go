package caddymodule

import (
	"os"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// childEnv, when set, makes the test binary run as a Caddy command instead
// of the tests, with the arguments after "--": the restart tests start the
// very code under test as a real process that they can kill.
const childEnv = "MPGATE_TEST_RUN_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		args := os.Args
		for i, a := range args {
			if a == "--" {
				args = args[i:]
				break
			}
		}
		os.Args = append([]string{"caddy"}, args[1:]...)
		caddycmd.Main()
		return
	}
	// keep Caddy's autosaved config and data out of the user's home
	home, err := os.MkdirTemp("", "mpgate-test-home-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", home)
	os.Setenv(hubPassEnv, svcPass)
	os.Setenv("XDG_DATA_HOME", home)
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}
