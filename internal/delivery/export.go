package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/export"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// ErrExportDisabled means the operator turned export off
// (PUSHCERT_DISABLE_EXPORT).
var ErrExportDisabled = errors.New("exporting the private key is turned off on this pushcert")

// ExportEnabled reports whether the private key may be exported at all.
func (d *Deliverer) ExportEnabled() bool { return !d.exportDisabled }

// Export encodes the active certificate and its key as f for by, who asked
// through via ("the console", "the API"). The export is recorded in the
// history (which raises an alert) before the file is returned: an export
// that cannot be recorded is not made. A *export.PassphraseError is the
// asker's to fix; ErrExportDisabled and ErrNoActiveKey say why nothing can
// be exported.
func (d *Deliverer) Export(ctx context.Context, by auth.User, f export.Format, passphrase, via string) (export.File, error) {
	if d.exportDisabled {
		return export.File{}, ErrExportDisabled
	}
	cert, key, err := d.st.ActivePair(ctx)
	if errors.Is(err, pushcert.ErrNotFound) {
		return export.File{}, ErrNoActiveKey
	}
	if err != nil {
		return export.File{}, err
	}
	file, err := export.Encode(f, cert.PEM, key, passphrase)
	if err != nil {
		return export.File{}, err
	}
	e := pushcert.Event{At: d.now(), Kind: pushcert.EventKeyExported, Actor: by,
		Serial: cert.SerialNumber, Topic: cert.Topic, NotAfter: cert.NotAfter,
		Detail: fmt.Sprintf("as %s, through %s", formatLabel(f), via)}
	if err := d.st.RecordEvent(ctx, e); err != nil {
		return export.File{}, fmt.Errorf("record export: %w", err)
	}
	d.log.Info("private key exported", "user_id", by.Subject, "format", string(f), "via", via, "serial", cert.SerialNumber)
	return file, nil
}

// formatLabel names an export format for history.
func formatLabel(f export.Format) string {
	for _, o := range export.Formats() {
		if o.Format == f {
			return o.Label
		}
	}
	return string(f)
}
