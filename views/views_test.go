package views

import (
	"context"
	"strings"
	"testing"

	"github.com/a-h/templ"

	"github.com/pushcert/pushcert/internal/auth"
)

func renderString(t *testing.T, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestStatusPageStates renders every state for every kind of visitor: each
// has its own words (not only a color) and a next step, and only
// administrators get the controls.
func TestStatusPageStates(t *testing.T) {
	admin := &auth.User{Email: "a@example.com", Role: auth.RoleAdmin}
	viewer := &auth.User{Email: "v@example.com", Role: auth.RoleViewer}
	cert := &CertificateView{Topic: "com.apple.mgmt.External.x", APSPName: "APSP:x", Serial: "01", Expiry: "2027-11-22 05:00 UTC", ExpiryRelative: "in 23 days"}
	states := []State{StateNotSetUp, StateWaiting, StateActive, StateExpiresSoon, StateExpired}
	users := []struct {
		name      string
		user      *auth.User
		wantAdmin bool
	}{
		{"admin", admin, true},
		{"viewer", viewer, false},
		{"no role", &auth.User{Email: "n@example.com"}, false},
	}
	labels := map[string]State{}
	for _, st := range states {
		label := stateLabel(st)
		if other, dup := labels[label]; dup {
			t.Errorf("got label %q for %s and %s, want one each", label, st, other)
		}
		labels[label] = st
		for _, u := range users {
			t.Run(string(st)+" "+u.name, func(t *testing.T) {
				v := StatusView{State: st, Pending: &PendingView{Created: "2027-10-01 10:00 UTC", CreatedBy: "a@example.com"}}
				if st != StateNotSetUp {
					v.Certificate = cert
				}
				page := renderString(t, StatusPage(Shell{Title: "Status", User: u.user, Path: "/"}, v))
				if !strings.Contains(page, ">"+templ.EscapeString(label)+"<") {
					t.Errorf("got no state text %q, want it", label)
				}
				if !strings.Contains(page, "Next step:") {
					t.Errorf("got no next step, want one")
				}
				for _, id := range []string{`data-testid="generate-csr"`, `data-testid="upload-form"`, `data-testid="download-csr"`} {
					if got := strings.Contains(page, id); got != u.wantAdmin {
						t.Errorf("%s: got %v, want %v", id, got, u.wantAdmin)
					}
				}
			})
		}
	}
}

func TestLayoutSignedOut(t *testing.T) {
	page := renderString(t, ErrorPage(Shell{Title: "Sign in required"}, ErrorView{Status: 401, Title: "Sign in required", Message: "m"}))
	for _, want := range []string{`data-testid="signin"`, `href="/login"`} {
		if !strings.Contains(page, want) {
			t.Errorf("got no %s, want it", want)
		}
	}
	for _, bad := range []string{`aria-label="Main"`, `data-testid="signout"`, `data-testid="dev-banner"`} {
		if strings.Contains(page, bad) {
			t.Errorf("got %s signed out, want none", bad)
		}
	}
}

// TestDevAppleLinkAdminsOnly: the simulated portal is an admin route, so
// only administrators get its navigation link, and only in development mode.
func TestDevAppleLinkAdminsOnly(t *testing.T) {
	tests := []struct {
		name string
		user *auth.User
		dev  bool
		want bool
	}{
		{"admin in dev mode", &auth.User{Email: "a@example.com", Role: auth.RoleAdmin}, true, true},
		{"viewer in dev mode", &auth.User{Email: "v@example.com", Role: auth.RoleViewer}, true, false},
		{"admin outside dev mode", &auth.User{Email: "a@example.com", Role: auth.RoleAdmin}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := renderString(t, HistoryPage(Shell{Title: "History", User: tt.user, Dev: tt.dev, Path: "/history"}, HistoryView{}))
			if got := strings.Contains(page, `href="/dev/apple"`); got != tt.want {
				t.Errorf("got Dev Apple link %v, want %v", got, tt.want)
			}
			if got := strings.Contains(page, `data-testid="dev-banner"`); got != tt.dev {
				t.Errorf("got dev banner %v, want %v", got, tt.dev)
			}
		})
	}
}

// TestErrorPageStatusLine: refusals name their HTTP status; the signed-out
// notice, answered with 200, does not, and offers to sign in again.
func TestErrorPageStatusLine(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		wantStatus  bool // the "HTTP status" line is shown
		wantSignIn  string
		wantAgainID bool // the link is data-testid="signin-again"
	}{
		{"signed out", 200, false, "Sign in again", true},
		{"session ended", 401, true, "Sign in again", true},
		{"not found", 404, true, "Sign in", false},
		{"server error", 500, true, "Sign in", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := renderString(t, ErrorPage(Shell{Title: "T"}, ErrorView{Status: tt.status, Title: "T", Message: "m"}))
			if got := strings.Contains(page, "HTTP status"); got != tt.wantStatus {
				t.Errorf("got status line %v, want %v", got, tt.wantStatus)
			}
			if got := strings.Contains(page, `data-testid="error-status"`); got != tt.wantStatus {
				t.Errorf("got error-status %v, want %v", got, tt.wantStatus)
			}
			if !strings.Contains(page, `href="/login"`) || !strings.Contains(page, ">"+tt.wantSignIn+"</a>") {
				t.Errorf("got no link %q to /login, want one", tt.wantSignIn)
			}
			if got := strings.Contains(page, `data-testid="signin-again"`); got != tt.wantAgainID {
				t.Errorf("got signin-again %v, want %v", got, tt.wantAgainID)
			}
		})
	}
}

// TestStatusPageWaitingWording: viewers have no upload form, so the next
// step tells them an administrator uploads the certificate; administrators
// are pointed to the form below.
func TestStatusPageWaitingWording(t *testing.T) {
	cert := &CertificateView{Topic: "com.apple.mgmt.External.x", APSPName: "APSP:x", Serial: "01", Expiry: "2027-11-22 05:00 UTC", ExpiryRelative: "in 23 days"}
	tests := []struct {
		name    string
		role    auth.Role
		cert    *CertificateView
		want    string
		notWant string
	}{
		{"admin, first certificate", auth.RoleAdmin, nil, "upload it below", "an administrator uploads it"},
		{"viewer, first certificate", auth.RoleViewer, nil, "an administrator uploads it here", "upload it below"},
		{"admin, renewal", auth.RoleAdmin, cert, "upload it below", "an administrator uploads it"},
		{"viewer, renewal", auth.RoleViewer, cert, "an administrator uploads it here", "upload it below"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := StatusView{State: StateWaiting, Certificate: tt.cert, Pending: &PendingView{Created: "2027-10-01 10:00 UTC", CreatedBy: "a@example.com"}}
			page := renderString(t, StatusPage(Shell{Title: "Status", User: &auth.User{Email: "u@example.com", Role: tt.role}, Path: "/"}, v))
			step := between(t, page, `data-testid="next-step"`, "</div>")
			if !strings.Contains(step, tt.want) {
				t.Errorf("got next step %q, want it to contain %q", step, tt.want)
			}
			if strings.Contains(step, tt.notWant) {
				t.Errorf("got next step %q, want no %q", step, tt.notWant)
			}
		})
	}
}

// TestStatusPageCertificateHint: the file may be left empty only to change
// the Apple ID of an existing certificate; before the first one it is
// required, as the server requires it.
func TestStatusPageCertificateHint(t *testing.T) {
	admin := Shell{Title: "Status", User: &auth.User{Email: "a@example.com", Role: auth.RoleAdmin}, Path: "/"}
	tests := []struct {
		name         string
		cert         *CertificateView
		wantHint     string
		wantRequired bool
	}{
		{"no certificate yet", nil, "Required", true},
		{"active certificate", &CertificateView{Topic: "t", APSPName: "APSP:x"}, "Leave it empty to change only the Apple ID.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := renderString(t, StatusPage(admin, StatusView{State: StateActive, Certificate: tt.cert}))
			hint := between(t, page, `id="certificate-help"`, "</p>")
			if !strings.Contains(hint, tt.wantHint) {
				t.Errorf("got hint %q, want it to contain %q", hint, tt.wantHint)
			}
			if tt.cert == nil && strings.Contains(page, "Leave it empty") {
				t.Errorf("got the Apple-ID-only hint without a certificate, want none")
			}
			input := between(t, page, `id="certificate"`, ">")
			if got := strings.Contains(input, " required"); got != tt.wantRequired {
				t.Errorf("got required %v on the file input %q, want %v", got, input, tt.wantRequired)
			}
		})
	}
}

// TestStatusPageFailureShownOnce: after a refusal the form's alert carries
// the reason; Details points to it instead of repeating it, but shows an
// older failure in full.
func TestStatusPageFailureShownOnce(t *testing.T) {
	admin := Shell{Title: "Status", User: &auth.User{Email: "a@example.com", Role: auth.RoleAdmin}, Path: "/"}
	const reason = "This certificate expired on 2020-01-01."
	tests := []struct {
		name       string
		v          StatusView
		wantCount  int  // how often the reason appears
		wantLink   bool // Details links to the form's alert
		wantReason bool // Details shows the reason
	}{
		{"the refusal just made", StatusView{UploadStatus: "Failed", UploadFailed: true, UploadFailureReason: reason, UploadFailureInForm: true,
			Form: UploadForm{Error: reason, ErrorField: "certificate"}}, 1, true, false},
		{"an older failure, no refusal now", StatusView{UploadStatus: "Failed", UploadFailed: true, UploadFailureReason: reason}, 1, false, true},
		{"an older failure and another refusal now", StatusView{UploadStatus: "Failed", UploadFailed: true, UploadFailureReason: reason,
			Form: UploadForm{Error: "Enter the Apple ID.", ErrorField: "appleIdentifier"}}, 1, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.v.State = StateActive
			page := renderString(t, StatusPage(admin, tt.v))
			if got := strings.Count(page, templ.EscapeString(reason)); got != tt.wantCount {
				t.Errorf("got the reason %d times, want %d", got, tt.wantCount)
			}
			if got := strings.Contains(page, `href="#upload-error" data-testid="upload-failure-link"`); got != tt.wantLink {
				t.Errorf("got link to the alert %v, want %v", got, tt.wantLink)
			}
			if got := strings.Contains(page, `data-testid="upload-failure"`); got != tt.wantReason {
				t.Errorf("got the reason in Details %v, want %v", got, tt.wantReason)
			}
		})
	}
}

// TestRenewHelpOrder: the renewal steps follow the order they are done in:
// the CSR here, then Apple's portal (sign in, Renew, upload the CSR,
// download the .pem), then the upload here.
func TestRenewHelpOrder(t *testing.T) {
	cert := &CertificateView{Topic: "com.apple.mgmt.External.x", APSPName: "APSP:x", Serial: "01"}
	tests := []struct {
		name  string
		role  auth.Role
		steps []string
	}{
		{"admin", auth.RoleAdmin, []string{"Generate a CSR", "sign in with", "choose <strong>Renew</strong>", "Upload the CSR file there", "download the renewed certificate (.pem)", "Upload the .pem file"}},
		{"viewer", auth.RoleViewer, []string{"generates a CSR on this page", "sign in with", "choose <strong>Renew</strong>", "Upload the CSR file there", "download the renewed certificate (.pem)", "administrator uploads the .pem file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := renderString(t, StatusPage(Shell{Title: "Status", User: &auth.User{Email: "u@example.com", Role: tt.role}, Path: "/"}, StatusView{State: StateActive, AppleID: "it@example.com", Certificate: cert}))
			help := between(t, page, `data-testid="renew-help"`, "</section>")
			at := 0
			for _, s := range tt.steps {
				i := strings.Index(help[at:], s)
				if i < 0 {
					t.Fatalf("got no %q after %q in the renewal steps %q, want the steps in order", s, help[:at], help)
				}
				at += i + len(s)
			}
			if strings.Contains(help, "generated on this page, download") {
				t.Errorf("got the old combined step, want separate steps")
			}
		})
	}
}

// TestHistoryTableFits: the table keeps fixed column widths, wraps long
// values inside their cells and breaks a time only between date and time
// of day; the stylesheet (tested in a browser by the handlers' layout test)
// relies on these hooks.
func TestHistoryTableFits(t *testing.T) {
	page := renderString(t, HistoryPage(Shell{Title: "History", User: &auth.User{Email: "v@example.com", Role: auth.RoleViewer}, Path: "/history"}, HistoryView{Rows: []HistoryRow{{
		Kind: "upload_failed", What: "Upload refused", Failure: true, Who: "v@example.com",
		When: "2027-11-22 05:00 UTC", WhenISO: "2027-11-22T05:00:00Z",
		Serial: "764AF7DD41A618B8", Topic: "com.apple.mgmt.External.55983920-66ca-4584-9c8c-c9f348df063d",
		Expiry: "2028-11-22 05:00 UTC", Detail: "The topic changed.",
	}}}))
	for _, want := range []string{
		`<col class="col-when">`, `<col class="col-what">`, `<col class="col-who">`, `<col class="col-certificate">`, `<col class="col-detail">`,
		`<span class="nowrap">2027-11-22</span>`, `<span class="nowrap">05:00 UTC</span>`,
		`<td class="wrap-anywhere" data-label="Who">v@example.com</td>`,
		`<td class="wrap-anywhere" data-label="Detail" data-testid="history-detail">The topic changed.</td>`,
		`<code class="block" data-testid="history-topic">com.apple.mgmt.External.55983920-66ca-4584-9c8c-c9f348df063d</code>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("got no %s, want it", want)
		}
	}
}

// between returns the markup after the first start up to the next end.
func between(t *testing.T, page, start, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(page, start)
	if !ok {
		t.Fatalf("got no %s in the page, want one", start)
	}
	in, _, _ := strings.Cut(after, end)
	return in
}
