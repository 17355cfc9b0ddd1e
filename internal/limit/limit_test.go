package limit_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/limit"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestAllowSpendsTheBudget(t *testing.T) {
	k := limit.New(limit.Rule{Events: 5, Per: 10 * time.Minute}, 100)
	for i := range 5 {
		if ok, _ := k.Allow("a", t0); !ok {
			t.Fatalf("Allow #%d = false, want true", i+1)
		}
	}
	ok, wait := k.Allow("a", t0)
	if ok || wait != 2*time.Minute {
		t.Errorf("Allow #6 = %v, %v, want false, 2m0s", ok, wait)
	}
	if ok, _ := k.Allow("b", t0); !ok {
		t.Error("Allow(other key) = false, want true")
	}
	if ok, _ := k.Allow("a", t0.Add(2*time.Minute)); !ok {
		t.Error("Allow after the refill = false, want true")
	}
}

func TestBlockedAndSpend(t *testing.T) {
	k := limit.New(limit.Rule{Events: 2, Per: time.Minute}, 100)
	if blocked, _ := k.Blocked("a", t0); blocked {
		t.Fatal("Blocked(unknown key) = true, want false")
	}
	k.Spend("a", t0)
	k.Spend("a", t0)
	k.Spend("a", t0) // past the budget: harmless
	blocked, wait := k.Blocked("a", t0)
	if !blocked || wait != 30*time.Second {
		t.Errorf("Blocked() = %v, %v, want true, 30s", blocked, wait)
	}
	if blocked, _ := k.Blocked("a", t0.Add(30*time.Second)); blocked {
		t.Error("Blocked() after the refill = true, want false")
	}
}

func TestSweepForgetsRefilledKeys(t *testing.T) {
	k := limit.New(limit.Rule{Events: 1, Per: time.Minute}, 100)
	k.Allow("a", t0)
	k.Allow("b", t0.Add(50*time.Second))
	k.Sweep(t0.Add(time.Minute))
	if n := k.Len(); n != 1 {
		t.Errorf("Len() after Sweep = %d, want 1", n)
	}
}

// TestMillionAddressesStayBounded hits the limiter from a million distinct
// addresses and checks that the key count and the heap stay bounded.
func TestMillionAddressesStayBounded(t *testing.T) {
	const max = 10_000
	k := limit.New(limit.Rule{Events: 5, Per: 10 * time.Minute}, max)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1_000_000 {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if i >= 1<<24 {
			t.Fatal("address space exhausted")
		}
		k.Allow(limit.AddressKey(addr), t0.Add(time.Duration(i)*time.Microsecond))
	}
	if n := k.Len(); n > max {
		t.Errorf("Len() = %d, want at most %d", n, max)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grown > 16<<20 {
		t.Errorf("heap grew by %d MiB for %d keys, want under 16 MiB", grown>>20, max)
	}
}

func TestAddressKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := limit.AddressKey(tt.in); got != tt.want {
			t.Errorf("AddressKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
