package server

import "testing"

func TestAllowedHostsDefault(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true, "127.0.0.2:1": true,
		":8080": false, "0.0.0.0:8080": false, "192.168.1.2:8080": false, "example.com:80": false,
	} {
		if got := allowedHosts(nil, listen) != nil; got != want {
			t.Errorf("--listen %s: a default host check is %v, want %v", listen, got, want)
		}
	}
	if got := allowedHosts([]string{"a.example"}, "127.0.0.1:8080"); len(got) != 1 || got[0] != "a.example" {
		t.Errorf("given hosts replaced by %v", got)
	}
}
