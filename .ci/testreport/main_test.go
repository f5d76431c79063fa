package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	const stream = `{"Action":"run","Package":"p","Test":"TestPass"}
{"Action":"pass","Package":"p","Test":"TestPass"}
{"Action":"run","Package":"p","Test":"TestAllowed"}
{"Action":"output","Package":"p","Test":"TestAllowed/sub","Output":"    a_test.go:9: only run as a helper\n"}
{"Action":"skip","Package":"p","Test":"TestAllowed/sub"}
{"Action":"output","Package":"p","Test":"TestNoChromium","Output":"    b_test.go:3: chromium not found\n"}
{"Action":"skip","Package":"p","Test":"TestNoChromium"}
{"Action":"output","Package":"p","Test":"TestBroken","Output":"    c_test.go:7: got 1, want 2\n"}
{"Action":"fail","Package":"p","Test":"TestBroken"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}
{"ImportPath":"q","Action":"build-output","Output":"q/x.go:1:1: syntax error\n"}
{"Action":"fail","Package":"q"}
`
	var out strings.Builder
	r, err := report(strings.NewReader(stream), &out, []string{"p TestAllowed"}, "tests")
	if err != nil {
		t.Fatal(err)
	}
	if r.passed != 1 || r.failed != 1 || r.skipped != 2 || r.ok() {
		t.Errorf("got %d passed, %d failed, %d skipped, ok %v; want 1, 1, 2, false", r.passed, r.failed, r.skipped, r.ok())
	}
	if len(r.unexpectedSkips) != 1 || r.unexpectedSkips[0] != (key{"p", "TestNoChromium"}) {
		t.Errorf("got unexpected skips %v, want only p TestNoChromium", r.unexpectedSkips)
	}
	if len(r.badPackages) != 1 || r.badPackages[0] != "q" {
		t.Errorf("got packages failed outside tests %v, want [q]", r.badPackages)
	}
	for _, want := range []string{
		"allowed p.TestAllowed/sub: a_test.go:9: only run as a helper",
		"NOT ALLOWED p.TestNoChromium: b_test.go:3: chromium not found",
		"c_test.go:7: got 1, want 2",
		"q/x.go:1:1: syntax error",
		"FAIL\tp\t0.1s",
		"tests: 1 passed, 1 failed, 2 skipped\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("got report\n%s\nwant it to contain %q", out.String(), want)
		}
	}
}

func TestReportAllPassed(t *testing.T) {
	var out strings.Builder
	r, err := report(strings.NewReader(`{"Action":"pass","Package":"p","Test":"TestA"}`+"\n"), &out, nil, "shifted")
	if err != nil || !r.ok() || !strings.HasSuffix(out.String(), "shifted: 1 passed, 0 failed, 0 skipped\n") {
		t.Errorf("got %+v, %v, %q; want ok and the closing count", r, err, out.String())
	}
}
