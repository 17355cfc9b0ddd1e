package limit_test

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/limit"
)

var forgotRule = limit.Rule{Events: 5, Per: 10 * time.Minute}

// BenchmarkAllowKnownKey spends from the budget of one address over and
// over (refilled each time), the cost for a returning client.
func BenchmarkAllowKnownKey(b *testing.B) {
	k := limit.New(forgotRule, 100_000)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(2 * time.Minute) // one event refilled
		k.Allow("192.0.2.1", now)
	}
}

// BenchmarkAllowNewKeyAtCap adds a new address to a full map every time,
// so that every call evicts: the worst case, a caller with endless
// addresses.
func BenchmarkAllowNewKeyAtCap(b *testing.B) {
	const max = 100_000
	k := limit.New(forgotRule, max)
	keys := make([]string, 4*max)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for i := range max {
		k.Allow(keys[i], t0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k.Allow(keys[max+i%(3*max)], t0)
		i++
	}
	if k.Len() > max {
		b.Fatalf("Len() = %d, want at most %d", k.Len(), max)
	}
}

// BenchmarkAllowParallel spends from many addresses' budgets at once; the
// map's one lock is shared by every request that reaches a limiter.
func BenchmarkAllowParallel(b *testing.B) {
	k := limit.New(limit.Rule{Events: 1 << 30, Per: time.Second}, 100_000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k.Allow("198.51.100."+strconv.Itoa(i&255), t0)
			i++
		}
	})
}

func BenchmarkAddressKey(b *testing.B) {
	for _, addr := range []string{"192.0.2.1", "2001:db8:1:2:3:4:5:6"} {
		b.Run(addr, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				limit.AddressKey(addr)
			}
		})
	}
}

// BenchmarkFullMapHeap reports the heap a map at its default cap of
// 100,000 IPv6 /64 keys holds, and that a million more keys do not grow it.
func BenchmarkFullMapHeap(b *testing.B) {
	for b.Loop() {
		before := heap()
		k := limit.New(forgotRule, 100_000)
		for i := range 100_000 {
			k.Allow(limit.AddressKey(v6(i)), t0)
		}
		full := heap()
		for i := 100_000; i < 1_100_000; i++ {
			k.Allow(limit.AddressKey(v6(i)), t0)
		}
		after := heap()
		b.ReportMetric(float64(full-before)/(1<<20), "MiB@100k")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB@1.1M")
		runtime.KeepAlive(k)
	}
}

func v6(i int) string { return fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff) }

func heap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
