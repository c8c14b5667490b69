package api

import "testing"

func TestOriginAllowed(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		patterns     []string
		ok           bool
	}{
		{"https://example.com", "example.com", nil, true},
		{"https://example.com", "example.com:443", nil, true},
		{"http://example.com:80", "example.com", nil, true},
		{"http://example.com", "example.com:8080", nil, false},
		{"https://example.com:8443", "example.com", nil, false},
		{"https://evil.com", "example.com", nil, false},
		{"https://app.example.com", "api.example.com", []string{"*.example.com"}, true},
		{"http://app.example.com", "api.example.com", []string{"https://*.example.com"}, false},
		{"null", "example.com", nil, false},
	} {
		err := originAllowed(tc.origin, tc.host, tc.patterns)
		if (err == nil) != tc.ok {
			t.Errorf("origin %q, host %q, patterns %q: got %v, want allowed=%v", tc.origin, tc.host, tc.patterns, err, tc.ok)
		}
	}
}
