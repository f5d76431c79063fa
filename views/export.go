package views

// ExportView is the export page: what would be exported, the formats in
// plain words, and after a refusal why.
type ExportView struct {
	// Enabled is false when the operator turned export off; the page then
	// says so and offers no form.
	Enabled bool
	// Certificate is the active certificate, the one an export holds; nil
	// when there is none yet.
	Certificate *ExportCertificate
	Formats     []ExportFormat // in the order the form offers them
	// Format is the format chosen in the form: the default, or what the
	// admin chose before a refusal.
	Format string
	// MinPassphrase is the shortest passphrase a PKCS#12 file takes.
	MinPassphrase int
	// SignInAge is how recent a sign-in must be to export, in words
	// ("5 minutes").
	SignInAge string
	// SignIn is what became of a sign-in pushcert asked for before an
	// export.
	SignIn ExportSignIn
	// Error is why the last Download was refused; empty when it was not.
	// It never quotes the passphrase.
	Error string
}

// ExportCertificate is the certificate an export holds, formatted.
type ExportCertificate struct {
	Topic  string
	Serial string
	Expiry string
}

// ExportFormat is one format as the form offers it.
type ExportFormat struct {
	Value       string // what the form sends: "pkcs12-compatible", ...
	Label       string
	Description string
}

// ExportSignIn is what became of a fresh sign-in asked for before an
// export.
type ExportSignIn string

// The outcomes of a fresh sign-in; their values are stable, for tests.
const (
	ExportSignInNone ExportSignIn = ""
	// ExportSignInRenewed: the admin signed in again and may press
	// Download again.
	ExportSignInRenewed ExportSignIn = "renewed"
	// ExportSignInOld: the provider sent back a sign-in older than asked
	// for, so the export still cannot be made.
	ExportSignInOld ExportSignIn = "old"
)

func formatID(value string) string { return "format-" + value }
