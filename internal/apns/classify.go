package apns

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// probeWait bounds the wait for what the server sent last (see connError).
const probeWait = 100 * time.Millisecond

// Advice the messages share.
const (
	renewAdvice = "renew it at Apple's Push Certificates Portal (https://identity.apple.com) with the same Apple ID and upload the renewed certificate"
	reachAdvice = "check the firewall (outbound 443 or 2197 to api.push.apple.com) or set HTTPS_PROXY"
	laterNote   = "this says nothing about the certificate, and pushcert checks again later"
	// A proxy that inspects TLS ends pushcert's TLS connection itself, so
	// the client certificate never reaches Apple: there is no setting that
	// makes the check work through one.
	inspectAdvice = "a proxy or firewall that inspects TLS may be answering in its place: let api.push.apple.com through uninspected"
)

// classifyAnswer says what Apple's HTTP answer to the test push means.
func classifyAnswer(server string, status int, reason string) (Outcome, string) {
	answer := strconv.Itoa(status)
	if reason != "" {
		answer += " " + reason
	}
	switch {
	case status == 200:
		return OutcomeAccepted, "Apple accepted the certificate (it took the test push to a device token no device has)"
	case status == 400 && (reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic"), status == 410:
		said := reason
		if said == "" {
			said = answer
		}
		return OutcomeAccepted, "Apple accepted the certificate (it answered " + said + " for a test device token, as expected)"
	case status == 403 && (reason == "MissingProviderToken" || reason == "InvalidProviderToken" || reason == "ExpiredProviderToken"):
		// Apple asks for a token only when no client certificate came with
		// the connection.
		return OutcomeUnreachable, server + " answered " + answer + ", as Apple's push service does when no client certificate reached it, " +
			"so this says nothing about the certificate: " + inspectAdvice
	case status == 403:
		return OutcomeRejected, refusal(reason)
	case status == 400 && (reason == "MissingTopic" || reason == "BadTopic" || reason == "TopicDisallowed"):
		return OutcomeRejected, "Apple refused the certificate's topic (" + answer + "): upload the push certificate Apple issued for this MDM server, renewed with the same Apple ID"
	case status == 429 || status >= 500:
		return OutcomeUnreachable, "Apple's push service is having trouble (it answered " + answer + "); " + laterNote
	case status >= 400 && reason != "":
		// Apple answers with a reason only on a connection whose client
		// certificate it accepted in the TLS handshake.
		return OutcomeAccepted, "Apple accepted the certificate (it took the TLS connection with it); note that it answered the test push with " + answer +
			" rather than BadDeviceToken, which is about the push, not the certificate"
	default:
		return OutcomeUnreachable, server + " answered " + answer + ", which is not how Apple's push service answers this check, so it says nothing about the certificate: " +
			"check that the APNs URL (PUSHCERT_APNS_URL) is " + DefaultURL + " and that no proxy answers in its place"
	}
}

// refusal words a 403 answer.
func refusal(reason string) string {
	switch reason {
	case "BadCertificateEnvironment":
		return "Apple refused the certificate (403 BadCertificateEnvironment): it is for the other push environment; " +
			"MDM push certificates work with the production service, so check that the APNs URL (PUSHCERT_APNS_URL) is " + DefaultURL
	case "BadCertificate":
		return "Apple refused the certificate (403 BadCertificate): it may have been revoked at Apple's Push Certificates Portal; " + renewAdvice
	case "":
		return "Apple refused the certificate (403); " + renewAdvice
	default:
		return "Apple refused the certificate (403 " + reason + "); " + renewAdvice
	}
}

// failure is a check that got no HTTP answer, with where it got to.
type failure struct {
	server  string
	host    string
	timeout time.Duration
	proxy   *url.URL // nil without a proxy
	p       milestones
}

// classify says what err, the test push's failure, means; parent is the
// caller's context, whose end is no fault of anyone's.
func (f failure) classify(parent context.Context, err error) (Outcome, string, string) {
	if parent.Err() != nil {
		return OutcomeUnreachable, "", "the check was canceled before Apple answered"
	}
	if !isTimeout(err) {
		if cause := connError(f.p.conn); cause != nil {
			err = &causeError{err: err, cause: cause}
		}
	}
	if alert, ok := remoteAlert(err); ok {
		if !f.p.serverTrusted {
			// The alert came before pushcert trusted the server, so before
			// its certificate went out: Apple never saw the certificate.
			return OutcomeUnreachable, "tls: " + alert, "the TLS handshake with " + f.server + " failed before pushcert sent its certificate (TLS alert: " + alert +
				"), so this says nothing about the certificate: a middlebox or proxy may be in the way; " + reachAdvice
		}
		o, msg := f.alertMessage(alert)
		return o, "tls: " + alert, msg
	}
	if f.proxy != nil && !f.p.tlsStarted {
		return OutcomeUnreachable, "", f.proxyMessage(err)
	}
	if msg, ok := f.serverCertMessage(err); ok {
		return OutcomeUnreachable, "", msg
	}
	// Apple drops the connection without an alert, mid-handshake or right
	// after the client's side of it, for a key it does not accept. Before
	// the server's certificate was verified, the client's had not gone
	// out: a connection cut then is the network's doing.
	if f.p.serverTrusted && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		return OutcomeRejected, "", "Apple closed the connection during the TLS handshake without answering, as it does with a certificate or key it does not accept: " +
			"check that the certificate is the one Apple issued for pushcert's key, or " + renewAdvice
	}
	return OutcomeUnreachable, "", f.networkMessage(err)
}

// connError returns the error reading from the connection meets, if it
// meets one soon: the TLS alert Apple sent, or the end of the connection.
// The HTTP/2 transport does not always pass it on: when the connection
// fails before the request goes out on it, it reports only "client conn
// could not be established", and when the server closed the connection
// before the request was written, only the failed write. A tls.Conn keeps
// its first read error and returns it from every later Read; the socket
// itself is still open (see heldConns) to read the alert from.
func connError(c net.Conn) error {
	if c == nil {
		return nil
	}
	// A network deadline, not a reading of the clock for pushcert's rules.
	_ = c.SetReadDeadline(time.Now().Add(probeWait))
	_, err := c.Read(make([]byte, 1))
	if err == nil || isTimeout(err) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// causeError is a transport's error with the connection's own, which
// explains it.
type causeError struct{ err, cause error }

func (e *causeError) Error() string   { return e.err.Error() + " (" + e.cause.Error() + ")" }
func (e *causeError) Unwrap() []error { return []error{e.cause, e.err} }

// remoteAlert returns the text of the TLS alert the server sent, without
// its "tls: " prefix, if err is one. crypto/tls reports it as a
// *net.OpError with Op "remote error", whose alert type is unexported.
func remoteAlert(err error) (string, bool) {
	for {
		var op *net.OpError
		if !errors.As(err, &op) || op.Err == nil {
			break
		}
		if op.Op == "remote error" {
			return strings.TrimPrefix(op.Err.Error(), "tls: "), true
		}
		err = op.Err
	}
	return "", false
}

// alertMessage words a TLS alert from the server.
func (f failure) alertMessage(alert string) (Outcome, string) {
	switch alert {
	case "expired certificate":
		return OutcomeRejected, "Apple refused the certificate: it has expired; " + renewAdvice
	case "revoked certificate":
		return OutcomeRejected, "Apple refused the certificate: it has been revoked at Apple's Push Certificates Portal; " + renewAdvice
	case "unknown certificate authority":
		return OutcomeRejected, "Apple refused the certificate (TLS alert: unknown certificate authority): it was not issued by Apple's push certificate authority; " +
			"upload the certificate Apple's Push Certificates Portal issued"
	case "bad certificate", "unsupported certificate", "unknown certificate", "certificate required", "bad certificate hash value":
		return OutcomeRejected, "Apple refused the certificate (TLS alert: " + alert + "): it may have been revoked, or is not a push certificate Apple issued; " + renewAdvice
	case "error decrypting message", "decrypt error":
		return OutcomeRejected, "Apple refused the certificate (TLS alert: " + alert + "): pushcert's private key does not match it; upload the certificate Apple issued for pushcert's key"
	case "internal error", "handshake failure", "access denied":
		return OutcomeRejected, "Apple ended the TLS handshake (TLS alert: " + alert + "), as it does with a certificate it does not accept: " +
			"check that the certificate is the one Apple issued for pushcert's key, or " + renewAdvice
	default:
		return OutcomeUnreachable, "the TLS handshake with " + f.server + " failed (TLS alert: " + alert + "), which is not about the certificate: " +
			"a proxy or firewall may be in the way; " + reachAdvice
	}
}

// proxyMessage words a failure to get through the proxy.
func (f failure) proxyMessage(err error) string {
	name := "the proxy " + f.proxy.Host + " (HTTPS_PROXY)"
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "pushcert could not reach " + name + ": connection refused; check HTTPS_PROXY, or list " + f.host + " in NO_PROXY to connect directly"
	case errors.As(err, &dnsErr):
		return "pushcert could not reach " + name + ": could not look up " + dnsErr.Name + "; check HTTPS_PROXY"
	case isTimeout(err) && !f.p.connected:
		return fmt.Sprintf("pushcert could not reach %s: no connection within %s; check HTTPS_PROXY and the firewall", name, f.timeout)
	case isTimeout(err):
		return fmt.Sprintf("%s did not open a connection to %s within %s; check that the proxy allows it", name, f.server, f.timeout)
	case f.p.connected:
		return name + " did not open a connection to " + f.server + " (" + err.Error() + "); allow " + f.server + " on the proxy"
	default:
		return "pushcert could not reach " + name + ": " + err.Error() + "; check HTTPS_PROXY"
	}
}

// serverCertMessage words a push service whose TLS certificate pushcert
// does not trust.
func (f failure) serverCertMessage(err error) (string, bool) {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknownCA):
		return "pushcert does not trust the TLS certificate " + f.server + " presented: it is not signed by an authority this system's roots trust, as Apple's is; " + inspectAdvice +
			" (for a private test service, add its authority with PUSHCERT_APNS_CA_FILE)", true
	case errors.As(err, &hostErr):
		return "the TLS certificate " + f.server + " presented is not for " + f.host + "; " + inspectAdvice, true
	case errors.As(err, &invalid):
		return "the TLS certificate " + f.server + " presented is not valid (" + invalid.Error() + "): check this system's clock; " + inspectAdvice, true
	}
	return "", false
}

// networkMessage words a failure to reach the push service directly.
func (f failure) networkMessage(err error) string {
	reach := "pushcert could not reach " + f.server + ": "
	var (
		dnsErr *net.DNSError
		notTLS tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return reach + "no such host; check the APNs URL and DNS, or set HTTPS_PROXY if this network reaches the internet through a proxy"
	case errors.As(err, &dnsErr):
		return reach + "could not look up " + dnsErr.Name + " (" + dnsErr.Err + "); check DNS, or set HTTPS_PROXY if this network reaches the internet through a proxy"
	case errors.Is(err, syscall.ECONNREFUSED):
		return reach + "connection refused; " + reachAdvice
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return reach + "no route to it; " + reachAdvice
	case errors.Is(err, syscall.ECONNRESET):
		return reach + "the connection was reset; " + reachAdvice
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return f.server + " closed the connection before the TLS handshake got to the certificate; a proxy or firewall may be cutting it: " + reachAdvice
	case isTimeout(err) && !f.p.connected:
		return fmt.Sprintf("%sno connection within %s; %s", reach, f.timeout, reachAdvice)
	case isTimeout(err) && !f.p.tlsDone:
		return fmt.Sprintf("the TLS handshake with %s did not finish within %s; %s", f.server, f.timeout, reachAdvice)
	case isTimeout(err):
		return fmt.Sprintf("Apple's push service at %s did not answer within %s; it may be having trouble: %s", f.server, f.timeout, laterNote)
	case errors.As(err, &notTLS), strings.Contains(err.Error(), "HTTP response to HTTPS client"):
		return f.server + " did not answer in TLS, so it is not Apple's push service: check that the APNs URL (PUSHCERT_APNS_URL) is " + DefaultURL
	}
	return reach + err.Error() + "; " + reachAdvice
}

// isTimeout reports whether err is the check's deadline or a network
// timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
