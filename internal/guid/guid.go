// Package guid makes the random identifiers pushcert hands out: the
// installation's id, pending keys, request ids and, in the Apple stand-in,
// push topics. There is one generator so that every id has the same form.
package guid

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random (version 4) UUID in its 8-4-4-4-12 lowercase form,
// such as 3b241101-e2bb-4255-8caf-4136c566a962. crypto/rand never fails
// on the systems pushcert runs on (it would stop the program instead).
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	hex.Encode(s[9:13], b[4:6])
	hex.Encode(s[14:18], b[6:8])
	hex.Encode(s[19:23], b[8:10])
	hex.Encode(s[24:], b[10:])
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return string(s[:])
}
