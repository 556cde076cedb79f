package snpacket

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzRoundTrip decodes arbitrary bytes; whatever decodes must encode, and
// the encoding must decode to the same message (section 5 as a whole).
// Seeds: every row of wireCases plus testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	for _, tc := range wireCases {
		f.Add(tc.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := Decode(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("Decode consumed %d of %d", n, len(b))
		}
		enc, err := Encode(p)
		if err != nil {
			t.Fatalf("Encode(%#v): %v", p, err)
		}
		q, m, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)) = % X: %v", p, enc, err)
		}
		if m != len(enc) {
			t.Fatalf("re-decode consumed %d of %d", m, len(enc))
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", q, p)
		}
		// The canonical encoding is stable.
		enc2, _ := Encode(q)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding: % X vs % X", enc, enc2)
		}
	})
}
