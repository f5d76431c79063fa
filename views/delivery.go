package views

// DeliverySection is the status page's list of delivery targets.
type DeliverySection struct {
	Targets []DeliveryView // in configuration order
}

// DeliveryView is one delivery target as the status page shows it, every
// field worked out and formatted by the handler. It never holds a secret.
type DeliveryView struct {
	Name        string
	KindLabel   string // "NanoMDM", "Folder", ...
	Destination string // URL or folder
	State       DeliveryState
	// Delivered names what the target holds: "serial 1A2B, 2026-12-01 10:00 UTC";
	// empty before the first delivery.
	DeliveredSerial string
	DeliveredAt     string
	LastAttempt     string // formatted time; empty before the first attempt
	LastError       string // the last attempt's failure, empty when it succeeded
	NextAttempt     string // when a failed delivery is tried again
	OutOfSyncSince  string
}

// DeliveryState is how a target stands with the active certificate.
type DeliveryState string

// Delivery states; their values are stable, for tests and stylesheets.
const (
	DeliveryInSync    DeliveryState = "in-sync"
	DeliveryOutOfSync DeliveryState = "out-of-sync"
	// DeliveryPending: the target lacks the certificate and no attempt
	// has failed yet (it is being delivered, or about to be).
	DeliveryPending DeliveryState = "pending"
	// DeliveryNothing: there is no active certificate to deliver.
	DeliveryNothing DeliveryState = "nothing"
)

func deliveryLabel(s DeliveryState) string {
	switch s {
	case DeliveryInSync:
		return "In sync"
	case DeliveryOutOfSync:
		return "Out of sync"
	case DeliveryPending:
		return "Delivering"
	case DeliveryNothing:
		return "Nothing to deliver yet"
	default:
		return string(s)
	}
}
