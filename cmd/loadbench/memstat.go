package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// memStat is what one Caddy process holds, in bytes.
type memStat struct {
	rss, hwm int64 // VmRSS and its peak, VmHWM
	// anon is RssAnon: the Go heap, stacks and the runtime's own memory;
	// the kernel can only swap it. file is RssFile: pages of mapped files
	// (the binary, Badger's tables and logs), which the kernel can drop
	// and read again.
	anon, file int64
	// heap is the Go heap's spans in use (HeapInuse); live is the memory
	// of the objects in them that the last collection kept or that were
	// allocated since (HeapAlloc). Both are 0 when the admin endpoint did
	// not answer.
	heap, live int64
}

// memory reads the process's resident memory from /proc and its Go heap
// from Caddy's admin endpoint, in that order, so that the heap profile's
// own allocations do not count in the resident figures.
func (p *caddyProc) memory() (memStat, error) {
	var m memStat
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return m, err
	}
	err = readLines(f, ":", map[string]*int64{"VmRSS": &m.rss, "VmHWM": &m.hwm,
		"RssAnon": &m.anon, "RssFile": &m.file})
	f.Close()
	if err != nil {
		return m, err
	}
	if m.rss == 0 {
		return m, errors.New("no VmRSS in /proc status")
	}
	for _, n := range []*int64{&m.rss, &m.hwm, &m.anon, &m.file} {
		*n <<= 10 // kB
	}
	m.heap, m.live, err = p.heap()
	return m, err
}

// heap reads HeapInuse and HeapAlloc from the runtime statistics at the
// end of the text form of Caddy's heap profile. It does not collect
// garbage first, so the figures are the heap as it stands.
func (p *caddyProc) heap() (inuse, alloc int64, err error) {
	body, err := p.adminGet("/debug/pprof/heap?debug=1")
	if err != nil {
		return 0, 0, err
	}
	defer body.Close()
	err = readLines(body, "=", map[string]*int64{"# HeapInuse": &inuse, "# HeapAlloc": &alloc})
	return inuse, alloc, err
}

// saveHeap writes Caddy's heap profile into its directory, for `go tool
// pprof` when the work directory is kept, and returns the file's path.
func (p *caddyProc) saveHeap(name string) (string, error) {
	body, err := p.adminGet("/debug/pprof/heap")
	if err != nil {
		return "", err
	}
	defer body.Close()
	path := filepath.Join(p.dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

func (p *caddyProc) adminGet(path string) (io.ReadCloser, error) {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + p.admin + path)
	if err != nil {
		return nil, fmt.Errorf("%s admin: %w", p.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s admin: GET %s: %s", p.name, path, resp.Status)
	}
	return resp.Body, nil
}

// readLines sets the numbers of the lines "key<sep> number [unit]" whose
// keys are in into.
func readLines(r io.Reader, sep string, into map[string]*int64) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		n := into[strings.TrimSpace(k)]
		if !ok || n == nil {
			continue
		}
		num, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		var err error
		if *n, err = strconv.ParseInt(num, 10, 64); err != nil {
			return fmt.Errorf("reading %s: %w", k, err)
		}
	}
	return sc.Err()
}
