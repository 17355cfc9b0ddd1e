package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// tokenFormat starts a token record in its binary form: the expiry and the
// reservation in Unix nanoseconds (0 for none) and the failures, as
// varints, then the username. It is about a fifth of the JSON form, which
// matters because every live token's record stays in Badger's tables, and
// those stay mapped into memory. Records that start with '{' are the JSON
// form written before, still read until they expire.
const tokenFormat = 1

var errBadRecord = errors.New("malformed token record")

func encodeToken(rec tokenRecord) []byte {
	v := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(rec.User))
	v = append(v, tokenFormat)
	v = binary.AppendVarint(v, unixNano(rec.Expires))
	v = binary.AppendVarint(v, unixNano(rec.Reserved))
	v = binary.AppendUvarint(v, uint64(max(rec.Failures, 0)))
	return append(v, rec.User...)
}

func decodeToken(v []byte) (tokenRecord, error) {
	var rec tokenRecord
	if len(v) > 0 && v[0] == '{' {
		err := json.Unmarshal(v, &rec)
		return rec, err
	}
	if len(v) == 0 || v[0] != tokenFormat {
		return rec, errBadRecord
	}
	v = v[1:]
	expires, n := binary.Varint(v)
	if n <= 0 {
		return rec, errBadRecord
	}
	v = v[n:]
	reserved, n := binary.Varint(v)
	if n <= 0 {
		return rec, errBadRecord
	}
	v = v[n:]
	failures, n := binary.Uvarint(v)
	if n <= 0 || failures > 1<<31 {
		return rec, errBadRecord
	}
	rec.Expires, rec.Reserved = fromUnixNano(expires), fromUnixNano(reserved)
	rec.Failures, rec.User = int(failures), string(v[n:])
	return rec, nil
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
