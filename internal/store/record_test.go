package store

import (
	"testing"
	"time"
)

func TestTokenRecord(t *testing.T) {
	expires := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for _, rec := range []tokenRecord{
		{User: "admin", Expires: expires},
		{User: "ldap.user@example.com", Expires: expires, Reserved: expires.Add(-time.Minute),
			Failures: 3},
		{User: "", Expires: expires},
	} {
		got, err := decodeToken(encodeToken(rec))
		if err != nil || !sameRecord(got, rec) {
			t.Errorf("decodeToken(encodeToken(%+v)) = %+v, %v; want it back", rec, got, err)
		}
	}
}

// Records written in the JSON form before the binary one still read, so
// that links mailed before an upgrade keep working.
func TestTokenRecordJSON(t *testing.T) {
	v := []byte(`{"user":"admin","expires":"2026-03-01T12:00:00.123456789Z",` +
		`"reserved":"2026-03-01T11:59:00Z","failures":2}`)
	want := tokenRecord{User: "admin",
		Expires:  time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		Reserved: time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC), Failures: 2}
	if got, err := decodeToken(v); err != nil || !sameRecord(got, want) {
		t.Errorf("decodeToken(JSON) = %+v, %v; want %+v", got, err, want)
	}
}

func TestTokenRecordMalformed(t *testing.T) {
	for _, v := range [][]byte{nil, {}, {2, 0, 0, 0}, {tokenFormat}, {tokenFormat, 0x80},
		{tokenFormat, 2, 0x80}, {tokenFormat, 2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, err := decodeToken(v); err == nil {
			t.Errorf("decodeToken(%x) = nil error, want one", v)
		}
	}
}

func FuzzDecodeToken(f *testing.F) {
	f.Add(encodeToken(tokenRecord{User: "admin", Expires: time.Unix(1e9, 0)}))
	f.Add([]byte(`{"user":"admin"}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeToken(v)
		if err != nil || v[0] != tokenFormat {
			return
		}
		if again, err := decodeToken(encodeToken(rec)); err != nil || !sameRecord(again, rec) {
			t.Errorf("decodeToken(encodeToken(%+v)) = %+v, %v", rec, again, err)
		}
	})
}

func sameRecord(a, b tokenRecord) bool {
	return a.User == b.User && a.Expires.Equal(b.Expires) && a.Reserved.Equal(b.Reserved) &&
		a.Failures == b.Failures
}
