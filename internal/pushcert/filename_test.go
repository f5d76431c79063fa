package pushcert

import (
	"strings"
	"testing"
)

// A refused file's name is kept as its base name, printable, clipped.
func TestFileName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"push.pem", "push.pem"},
		{`C:\Users\ada\Downloads\MDM_ Example.pem`, "MDM_ Example.pem"},
		{"/home/ada/push.pem", "push.pem"},
		{"a\x00b\nc.pem", "abc.pem"},
		{"", ""},
	} {
		if got := fileName(tt.in); got != tt.want {
			t.Errorf("fileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := fileName(strings.Repeat("x", 5000) + ".pem"); len(got) > 110 {
		t.Errorf("a 5000-character name kept as %d bytes, want it clipped", len(got))
	}
}
