// Command caddy is a Caddy build with the standard modules and the
// password_reset module, so the project runs with a plain go run or go build.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mpgate/password-reset/caddymodule"
)

func main() {
	caddycmd.Main()
}
