package target

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// transportError words a failure to get an answer from the server. ctx is
// the delivery's own context, which tells its timeout from the caller's
// cancellation.
func (m *MDM) transportError(ctx context.Context, err error) *Error {
	// *url.Error quotes the whole URL, query and all: keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	name := m.srv.display
	if ctx.Err() != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errTimedOut):
			return fail(err, "timed out after %s waiting for %s at %s", m.timeout, name, m.hostport)
		case errors.Is(cause, context.DeadlineExceeded):
			return fail(err, "the delivery's deadline passed before %s at %s answered", name, m.hostport)
		default:
			return fail(err, "the delivery was canceled before %s at %s answered", name, m.hostport)
		}
	}
	return fail(err, "%s", netMessage(name, m.hostport, err))
}

// netMessage says in plain words why name at hostport could not be
// reached.
func netMessage(name, hostport string, err error) string {
	var (
		op        *net.OpError
		dnsErr    *net.DNSError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		notTLS    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &op) && op.Op == "proxyconnect":
		return "could not reach the proxy set by HTTPS_PROXY (or HTTP_PROXY): " + op.Err.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused by " + hostport + ": is " + name + " running?"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host " + dnsErr.Name + ": check the url"
	case errors.As(err, &dnsErr):
		return "could not look up " + dnsErr.Name + ": " + dnsErr.Err
	case errors.As(err, &unknownCA):
		return "the server's TLS certificate is not trusted: set caFile for this target"
	case errors.As(err, &hostErr):
		return "the server's TLS certificate is not for the url's host (" + hostErr.Error() + "): set url to a name the certificate holds"
	case errors.As(err, &invalid):
		return "the server's TLS certificate is not valid: " + invalid.Error()
	// net/http turns a RecordHeaderError that looks like HTTP into text.
	case errors.As(err, &notTLS), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return hostport + " did not answer in TLS: if " + name + " serves plain http there, the url must start with http://"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return hostport + " cannot be reached from here: check the address, routes and firewalls"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return hostport + " closed the connection before " + name + " answered: check that the url points at " + name
	case isTimeout(err):
		return "timed out connecting to " + hostport
	}
	return "could not reach " + name + " at " + hostport + ": " + err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
