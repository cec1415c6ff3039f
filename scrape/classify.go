package scrape

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
	"time"
)

// classify turns an error from http.Client.Do, which arrives before any
// response body, into a kind and a short message. ctx is the fetch's own
// context and limit the time it was given: once its deadline has passed,
// whatever error the transport surfaced (and that varies by where it was cut)
// is a timeout.
func classify(ctx context.Context, limit time.Duration, err error) *Error {
	if e := contextError(ctx, limit, ""); e != nil {
		return e
	}

	var re *redirectError
	if errors.As(err, &re) {
		return Errorf(re.kind, "%s", re.msg)
	}
	// Before the dial errors: the guard's refusal is one of them.
	var be *blockedError
	if errors.As(err, &be) {
		return Errorf(KindBlockedAddress, "%s", be)
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return Errorf(KindDNS, "no such host %q", dnsErr.Name)
		case dnsErr.IsTimeout:
			// Usually a slow or unreachable resolver: as transient as any
			// other timeout, so it is classified with them.
			return Errorf(KindTimeout, "dns lookup of %q timed out", dnsErr.Name)
		default:
			return Errorf(KindDNS, "lookup %q: %s", dnsErr.Name, dnsErr.Err)
		}
	}

	if isTLS(err) {
		return Errorf(KindTLS, "%s", message(err))
	}

	var opErr *net.OpError
	isOp := errors.As(err, &opErr)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		switch {
		case isOp && opErr.Op == "dial":
			return Errorf(KindTimeout, "connect timed out")
		case strings.Contains(err.Error(), "TLS handshake timeout"):
			return Errorf(KindTimeout, "TLS handshake timed out")
		default:
			return Errorf(KindTimeout, "timed out after %s", limit)
		}
	}

	var errno syscall.Errno
	if errors.As(err, &errno) && connectErrno(errno) {
		return Errorf(KindConnect, "%s", errno.Error())
	}
	if isOp && (opErr.Op == "dial" || opErr.Op == "proxyconnect") {
		return Errorf(KindConnect, "%s", message(opErr.Err))
	}
	// The server accepted the connection and closed it without answering:
	// to the caller that is as much a connection failure as a reset.
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Errorf(KindConnect, "connection closed before response")
	}
	return Errorf(KindFetch, "%s", message(err))
}

// Classify is what a fetch's record would say of err, a failure of an HTTP
// request made on ctx, which was given limit: its kind and a short message.
// The coordinator classifies its own requests (robots.txt) with it, so that
// they are judged as the pages are.
func Classify(ctx context.Context, limit time.Duration, err error) *Error {
	return classify(ctx, limit, err)
}

// classifyBody classifies an error that cut the body short.
func classifyBody(ctx context.Context, limit time.Duration, err error) *Error {
	if e := contextError(ctx, limit, " reading body"); e != nil {
		return e
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return Errorf(KindTimeout, "timed out reading body")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return Errorf(KindBadBody, "body cut short")
	}
	return Errorf(KindBadBody, "read body: %s", message(err))
}

// contextError reports why ctx ended, if it has. Cancellation by the caller
// has no kind of its own: it means the worker is stopping, and such records
// are not meant to be kept.
func contextError(ctx context.Context, limit time.Duration, where string) *Error {
	switch ctx.Err() {
	case nil:
		return nil
	case context.DeadlineExceeded:
		return Errorf(KindTimeout, "timed out after %s%s", limit, where)
	default:
		return Errorf(KindFetch, "canceled%s", where)
	}
}

// isTLS reports whether err comes from the TLS handshake or certificate
// checks. Alerts have no exported type, only the net.OpError the tls package
// wraps them in.
func isTLS(err error) bool {
	var (
		verifyErr     *tls.CertificateVerificationError
		recordErr     tls.RecordHeaderError
		alertErr      tls.AlertError
		echErr        *tls.ECHRejectionError
		unknownAuth   x509.UnknownAuthorityError
		hostnameErr   x509.HostnameError
		invalidErr    x509.CertificateInvalidError
		systemRoots   x509.SystemRootsError
		opErr         *net.OpError
		constraintErr x509.ConstraintViolationError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &recordErr), errors.As(err, &alertErr),
		errors.As(err, &echErr), errors.As(err, &unknownAuth), errors.As(err, &hostnameErr),
		errors.As(err, &invalidErr), errors.As(err, &systemRoots), errors.As(err, &constraintErr):
		return true
	case errors.As(err, &opErr) && (opErr.Op == "remote error" || opErr.Op == "local error"):
		return true
	}
	// Most handshake failures are plain errors.New values in crypto/tls.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return strings.HasPrefix(err.Error(), "tls: ")
}

func connectErrno(errno syscall.Errno) bool {
	switch errno {
	case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.ENETDOWN, syscall.EPIPE:
		return true
	}
	return false
}

// message is err's text without the `Get "https://…":` prefix that
// *url.Error adds: the record already holds the URL.
func message(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return strings.ToValidUTF8(err.Error(), "\uFFFD")
}
