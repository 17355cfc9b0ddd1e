package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mpgate/password-reset/internal/hubsim"
)

// hubUsers is how many users the stand-in hub has: enough for the tokens
// of the memory phase, the seeded redemptions and the oracle's probes.
const hubUsers = 300000

// bench holds what every phase shares: the binary, the work directory,
// and the in-process upstream, hub and mail sink.
type bench struct {
	o   options
	bin string
	dir string

	upstream string
	hubAddr  string
	hub      *hubsim.Server
	sink     *sink
	stops    []func()
	started  int // Caddy processes started, for unique directories
	rep      *report
}

func setup(o options) (*bench, error) {
	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, dir: dir, bin: o.caddy, rep: new(report)}
	if b.bin == "" {
		log.Printf("building cmd/caddy")
		if b.bin, err = buildCaddy(dir); err != nil {
			b.close()
			return nil, err
		}
	}
	up, stop, err := listen(upstream())
	if err != nil {
		b.close()
		return nil, err
	}
	b.upstream, b.stops = up, append(b.stops, stop)
	b.hub = hub(hubUsers)
	hubAddr, stop, err := listen(b.hub)
	if err != nil {
		b.close()
		return nil, err
	}
	b.hubAddr, b.stops = hubAddr, append(b.stops, stop)
	if b.sink, err = startSink(); err != nil {
		b.close()
		return nil, err
	}
	b.stops = append(b.stops, b.sink.close)
	return b, nil
}

func (b *bench) close() {
	for _, stop := range b.stops {
		stop()
	}
	if b.o.keep {
		log.Printf("work directory kept: %s", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

// start runs one Caddy: plain when limits is empty, else with the module
// and those limits. A storage directory that exists is used as it is.
func (b *bench) start(name, limits, storage string) (*caddyProc, error) {
	b.started++
	dir := filepath.Join(b.dir, strconv.Itoa(b.started)+"-"+name)
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	s := site{addr: addr, admin: admin, upstream: b.upstream}
	if limits != "" {
		if storage == "" {
			storage = filepath.Join(dir, "storage")
		}
		s.module, s.hub, s.smtp, s.storage, s.limits = true, b.hubAddr, b.sink.addr(), storage, limits
	}
	return startCaddy(b.bin, dir, name, addr, admin, s.caddyfile())
}

// pair runs a plain Caddy and one with the module, side by side.
func (b *bench) pair(limits string) (plain, module *caddyProc, err error) {
	plain, err = b.start("plain", "", "")
	if err != nil {
		return nil, nil, err
	}
	module, err = b.start("module", limits, "")
	if err != nil {
		plain.stop()
		return nil, nil, err
	}
	return plain, module, nil
}

// serve starts both sides and waits until the context ends, printing
// their addresses for another load generator.
func (b *bench) serve(ctx context.Context) error {
	plain, module, err := b.pair(raisedLimits)
	if err != nil {
		return err
	}
	defer plain.stop()
	defer module.stop()
	log.Printf("plain:  %s", plain.url(passthroughPath))
	log.Printf("module: %s", module.url(passthroughPath))
	log.Printf("press Ctrl+C to stop")
	<-ctx.Done()
	return nil
}

// url returns an absolute URL on p.
func (p *caddyProc) url(path string) string { return fmt.Sprintf("http://%s%s", p.addr, path) }
