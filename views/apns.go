package views

// APNSView is the last connection check against Apple's push service, as
// the status page shows it, formatted by the handler.
type APNSView struct {
	Outcome      string // "accepted", "rejected", "unreachable" or "none"
	Label        string // "Accepted", ...
	Message      string // what Apple answered and what to do, in words
	Serial       string // the certificate checked
	Server       string // "api.push.apple.com:443"
	CheckedAt    string // formatted; empty before the first check
	CheckedAtISO string
	CheckedBy    string // a person, or "pushcert"
	// ForActive is false when the result is about an earlier certificate
	// (the new one is about to be checked); TopicMatches false when the
	// checked topic is not the active one.
	ForActive    bool
	TopicMatches bool
	Checking     bool   // a check is running now
	NextCheck    string // formatted; empty when none is planned
	Every        string // the periodic check, "every day"; empty when it is off
}
