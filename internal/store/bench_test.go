package store_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/secret"
	"github.com/mpgate/password-reset/internal/store"
)

// The store's benchmarks run on the real, synced Badger options, so each
// write includes an fsync of the value log. The parallel ones show how far
// Badger's batching of concurrent commits carries past that.

func benchStore(b *testing.B) *store.Badger {
	b.Helper()
	s, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatalf("Open = %v", err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkIssue issues one token per distinct user, one at a time.
func BenchmarkIssue(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Issue("user"+strconv.Itoa(i), t0, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkIssueParallel issues tokens from many goroutines at once, as the
// store sees them when several workers or handlers write together.
func BenchmarkIssueParallel(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	b.SetParallelism(8)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := "user" + strconv.FormatInt(n.Add(1), 10)
			if _, err := s.Issue(u, t0, time.Hour); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// seed issues n tokens and returns them.
func seed(b *testing.B, s *store.Badger, n int) []secret.String {
	b.Helper()
	tokens := make([]secret.String, n)
	for i := range tokens {
		iss, err := s.Issue("user"+strconv.Itoa(i), t0, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = iss.Token
	}
	return tokens
}

// BenchmarkCheck verifies live tokens: a digest and a read transaction.
func BenchmarkCheck(b *testing.B) {
	s := benchStore(b)
	tokens := seed(b, s, 1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Check(tokens[i%len(tokens)], t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCheckUnknown verifies tokens the store never issued, the common
// case of a guessing client.
func BenchmarkCheckUnknown(b *testing.B) {
	s := benchStore(b)
	seed(b, s, 1000)
	bad, err := store.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Check(bad, t0); err == nil {
			b.Fatal("Check(unknown) = nil error")
		}
	}
}

// BenchmarkRedeem reserves and consumes a token, the store's part of a
// successful reset: one synced write.
func BenchmarkRedeem(b *testing.B) {
	s := benchStore(b)
	tokens := seed(b, s, b.N+1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res, err := s.Reserve(tokens[i], t0)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Consume(res, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueue records outbox jobs one at a time: the store's part of
// an accepted forgot request.
func BenchmarkEnqueue(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Enqueue(job(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEnqueueParallel records outbox jobs from many goroutines, as
// concurrent forgot requests do; Badger commits them in shared batches.
func BenchmarkEnqueueParallel(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	b.SetParallelism(16)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Enqueue(job(int(n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func job(i int) store.Job {
	id := strconv.Itoa(i)
	return store.Job{ID: id, User: "user" + id, RequestedAt: t0, NextAt: t0}
}
