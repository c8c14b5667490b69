package api

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/service"
)

// The per-address limit counts an IPv6 host by its /64: it may take any
// address in it, so one each would not slow it down.
func TestConnLimitCountsIPv6ByItsSlash64(t *testing.T) {
	cc := newConnCounter(ConnLimits{PerIP: 2}, slog.New(slog.DiscardHandler))
	alice := service.Caller{User: "alice"}
	for _, ip := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2"} {
		if _, err := cc.open(alice, ip); err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
	}
	_, err := cc.open(alice, "2001:db8:0:1:ffff::9")
	if err == nil || !strings.Contains(err.Error(), "2001:db8:0:1::/64") {
		t.Fatalf("a third address of the /64: %v, want it refused, naming the /64", err)
	}
	if _, err := cc.open(alice, "2001:db8:0:2::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}
