package delivery

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// TargetStatus is what everyone may see of one target: never its secret.
type TargetStatus struct {
	Name        string
	Kind        string // "nanomdm", ...
	KindLabel   string // "NanoMDM", ...
	Destination string // the target's Describe()
	// InSync reports whether the target holds the active certificate.
	InSync          bool
	DeliveredSerial string // "" before the first delivery
	DeliveredAt     time.Time
	LastAttemptAt   time.Time
	LastError       string // "" when the last attempt succeeded
	Failures        int
	NextAttemptAt   time.Time // when a failed delivery is tried again
	OutOfSyncSince  time.Time
	Redeliver       bool // "Deliver now" was asked and has not succeeded yet
}

// Status returns every configured target's status, in configuration order,
// and the serial of the active certificate ("" when there is none).
func (d *Deliverer) Status(ctx context.Context) ([]TargetStatus, string, error) {
	st, err := d.st.State(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("read state: %w", err)
	}
	var fingerprint, serial string
	if st.Certificate != nil {
		fingerprint, serial = st.Certificate.Fingerprint, st.Certificate.SerialNumber
	}
	if len(d.targets) == 0 {
		return nil, serial, nil
	}
	recs, err := d.st.DeliveryRecords(ctx)
	if err != nil {
		return nil, "", err
	}
	byName := make(map[string]Record, len(recs))
	for _, r := range recs {
		byName[r.Target] = r
	}
	out := make([]TargetStatus, len(d.targets))
	for i, t := range d.targets {
		r := byName[t.Name()]
		out[i] = TargetStatus{
			Name: t.Name(), Kind: t.Kind(), KindLabel: KindLabel(t.Kind()), Destination: t.Describe(),
			InSync:          fingerprint != "" && r.holds(fingerprint, settingsOf(t)),
			DeliveredSerial: r.DeliveredSerial, DeliveredAt: r.DeliveredAt,
			LastAttemptAt: r.LastAttemptAt, LastError: r.LastError, Failures: r.Failures,
			NextAttemptAt: r.NextAttemptAt, OutOfSyncSince: r.OutOfSyncSince, Redeliver: !r.RequestedAt.IsZero(),
		}
	}
	return out, serial, nil
}

// KindLabel names a kind of target for people.
func KindLabel(kind string) string {
	switch kind {
	case "nanomdm":
		return "NanoMDM"
	case "nanohub":
		return "NanoHUB"
	case "micromdm":
		return "MicroMDM"
	case "folder":
		return "Folder"
	default:
		return kind
	}
}

// Describe names a target and where it delivers, for history.
func Describe(t Target) string {
	return KindLabel(t.Kind()) + " at " + t.Describe()
}

// joinNames lists names for a sentence: "a", "a and b", "a, b and c".
func joinNames(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
