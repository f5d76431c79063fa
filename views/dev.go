package views

// DevAppleView is the simulated Apple portal of development mode.
type DevAppleView struct {
	Pending  *PendingView // the CSR a certificate would be issued for; nil if none
	Topic    string       // the active certificate's topic, empty when none
	IssuerCA string       // the test authority's name
	SoonDays int          // the validity in days of the "expires soon" choice
}
