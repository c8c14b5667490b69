package api

import (
	"net"
	"net/http"
	"testing"
)

func TestClientIP(t *testing.T) {
	cidrs := func(ss ...string) []*net.IPNet {
		var ns []*net.IPNet
		for _, s := range ss {
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				t.Fatal(err)
			}
			ns = append(ns, n)
		}
		return ns
	}
	proxy := cidrs("127.0.0.1/32", "10.0.0.0/8")
	const xff, fwd = XForwardedFor, ForwardedHeader
	for _, tc := range []struct {
		name     string
		trusted  []*net.IPNet
		header   string // the one the proxies write
		peer     string
		xff, fwd string
		want     string
	}{
		{"no proxies: headers ignored", nil, xff, "127.0.0.1:5", "203.0.113.7", "for=203.0.113.8", "127.0.0.1"},
		{"from a proxy", proxy, xff, "127.0.0.1:5", "203.0.113.7", "", "203.0.113.7"},
		{"the last address not a proxy's", proxy, xff, "127.0.0.1:5", "198.51.100.1, 203.0.113.7, 10.1.2.3", "", "203.0.113.7"},
		{"not from a proxy: headers ignored", proxy, xff, "192.0.2.9:5", "203.0.113.7", "for=203.0.113.8", "192.0.2.9"},
		{"loopback is not trusted unless named", cidrs("10.0.0.0/8"), xff, "127.0.0.1:5", "203.0.113.7", "", "127.0.0.1"},
		{"a Forwarded the proxy passed on is ignored", proxy, xff, "127.0.0.1:5", "203.0.113.7", "for=198.51.100.66", "203.0.113.7"},
		{"Forwarded", proxy, fwd, "127.0.0.1:5", "", `for=203.0.113.8;proto=https;by=10.0.0.1`, "203.0.113.8"},
		{"an X-Forwarded-For the proxy passed on is ignored", proxy, fwd, "127.0.0.1:5", "198.51.100.66", "", "127.0.0.1"},
		{"Forwarded chain", proxy, fwd, "127.0.0.1:5", "", `for=198.51.100.1, for="203.0.113.9:4711", for=10.0.0.2`, "203.0.113.9"},
		{"Forwarded IPv6", proxy, fwd, "127.0.0.1:5", "", `For="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17"},
		{"Forwarded unknown", proxy, fwd, "127.0.0.1:5", "", `for=unknown`, "127.0.0.1"},
		{"all proxies", proxy, xff, "127.0.0.1:5", "10.0.0.3", "", "10.0.0.3"},
	} {
		r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.fwd != "" {
			r.Header.Set("Forwarded", tc.fwd)
		}
		if got := clientIP(tc.trusted, tc.header)(r); got != tc.want {
			t.Errorf("%s: client %q, want %q", tc.name, got, tc.want)
		}
	}
}
