package api

import (
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// ForwardedHeader and XForwardedFor are the headers proxies may say who
// the client is in (Config.ProxyHeader).
const (
	ForwardedHeader = "Forwarded" // RFC 7239
	XForwardedFor   = "X-Forwarded-For"
)

// clientIP returns the extractor of a request's client address. With no
// trusted proxies it is the peer's address: forwarding headers are
// anyone's to write. Behind proxies, only requests from them may say who
// the client is, in header, the one header they write (read another, and
// a client could send it through them untouched); the client is the last
// address in the chain that is not a trusted proxy, so a client cannot
// pass itself off as another by prepending addresses.
func clientIP(trusted []*net.IPNet, header string) echo.IPExtractor {
	direct := echo.ExtractIPDirect()
	if len(trusted) == 0 {
		return direct
	}
	// Only the given ranges: Echo would trust loopback and private
	// addresses too by default.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	xff := echo.ExtractIPFromXFFHeader(opts...)
	isTrusted := func(ip net.IP) bool {
		for _, n := range trusted {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := direct(r)
		if !isTrusted(net.ParseIP(peer)) {
			return peer
		}
		if header != ForwardedHeader {
			return xff(r)
		}
		if fwd := r.Header.Values(ForwardedHeader); len(fwd) > 0 {
			return lastUntrusted(append(forwardedFor(fwd), peer), peer, isTrusted)
		}
		return peer
	}
}

// lastUntrusted returns the last of hops that is not trusted, or the first
// of them when all are. A hop that is not an IP address (RFC 7239 allows
// "unknown" and obfuscated names) ends the chain of trust: fallback is
// returned.
func lastUntrusted(hops []string, fallback string, trusted func(net.IP) bool) string {
	for i := len(hops) - 1; i >= 0; i-- {
		ip := net.ParseIP(hops[i])
		if ip == nil {
			return fallback
		}
		if !trusted(ip) {
			return ip.String()
		}
	}
	return hops[0]
}

// forwardedFor returns the for= addresses of Forwarded header values, in
// order, without quotes, brackets or ports.
func forwardedFor(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				hops = append(hops, forwardedNode(val))
			}
		}
	}
	return hops
}

// forwardedNode strips a node of RFC 7239 to its address: "[2001:db8::1]:80"
// and "192.0.2.1:80" lose their port, quotes are dropped.
func forwardedNode(v string) string {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if h, _, err := net.SplitHostPort(v); err == nil {
		return h
	}
	return strings.Trim(v, "[]")
}
