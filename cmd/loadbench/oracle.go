package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// hexKey returns the token key of the modules under test.
func hexKey() ([]byte, error) { return hex.DecodeString(tokenKeyHex) }

// oracleFirstUser is the first stand-in user the oracle asks for, past
// those the redemption phase seeds.
const oracleFirstUser = 200001

// oracle times forgot requests for existing and unknown users, strictly
// alternating, while background load keeps the server busy: passthrough
// requests and forgot requests for unknown names, half the connections
// each. Every existing user is asked for once, so each one costs the
// worker a hub look-up, a token and a mail.
func (b *bench) oracle(ctx context.Context) error {
	module, err := b.start("module", raisedLimits, "")
	if err != nil {
		return err
	}
	defer module.stop()
	busyCtx, stopBusy := context.WithCancel(ctx)
	defer stopBusy()
	half := max(b.o.busyConns/2, 1)
	total := time.Duration(b.o.rounds) * b.o.round
	busy := []load{
		{client: newClient(half), conns: half, duration: total + 5*time.Second,
			want: http.StatusOK, build: get(module.url(passthroughPath))},
		{client: newClient(half), conns: half, duration: total + 5*time.Second,
			want: http.StatusOK, build: post(func(n int64) string {
				return module.url(fmt.Sprintf("/api/auth/password/forgot/busy-%d", n))
			}, "", nil)},
	}
	var wg sync.WaitGroup
	var busyDone atomic.Int64
	for _, l := range busy {
		wg.Go(func() { busyDone.Add(int64(l.run(busyCtx).n)) })
	}
	time.Sleep(time.Second) // let the background load settle

	client := newClient(1)
	probe := load{client: client, want: http.StatusOK}
	var known, unknown []time.Duration
	bad := 0
	deadline := time.Now().Add(total)
	for i := int64(0); time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		kinds := []bool{true, false}
		if i%2 == 1 {
			kinds = []bool{false, true}
		}
		for _, existing := range kinds {
			name := fmt.Sprintf("nobody-probe-%d", i)
			if existing {
				name = userName(oracleFirstUser + i)
			}
			req, _ := http.NewRequest(http.MethodPost,
				module.url("/api/auth/password/forgot/"+name), nil)
			t := time.Now()
			status, err := probe.send(req)
			d := time.Since(t)
			switch {
			case err != nil || status != http.StatusOK:
				bad++
			case existing:
				known = append(known, d)
			default:
				unknown = append(unknown, d)
			}
		}
	}
	stopBusy()
	wg.Wait()
	slices.Sort(known)
	slices.Sort(unknown)
	diff := quantile(known, 0.5) - quantile(unknown, 0.5)
	log.Printf("oracle: %d pairs, median existing %s, unknown %s", len(known),
		ms(quantile(known, 0.5)), ms(quantile(unknown, 0.5)))
	b.rep.goal("5. timing oracle under load", "medians within 0.2 ms",
		fmt.Sprintf("existing %s, unknown %s: %+.3f ms apart (%d of each)",
			ms(quantile(known, 0.5)), ms(quantile(unknown, 0.5)),
			float64(diff)/float64(time.Millisecond), len(known)),
		abs(diff) <= 200*time.Microsecond && len(known) > 0 && bad == 0)
	b.rep.section("Timing oracle under load",
		fmt.Sprintf("One client alternates forgot requests for an existing user (a new one "+
			"each time, with an email address, so the worker mails every one) and for an "+
			"unknown name, while %d connections of background load (passthrough and forgot) "+
			"keep the server busy for %s; %d background requests were answered, %d probes "+
			"failed.", 2*half, total, busyDone.Load(), bad), "",
		"| kind | probes | p10 | p50 | p90 | p99 |", "| --- | --- | --- | --- | --- | --- |",
		probeRow("existing user", known), probeRow("unknown name", unknown))
	return nil
}

func probeRow(kind string, sorted []time.Duration) string {
	return row(kind, fmt.Sprint(len(sorted)), ms(quantile(sorted, 0.1)),
		ms(quantile(sorted, 0.5)), ms(quantile(sorted, 0.9)), ms(quantile(sorted, 0.99)))
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
