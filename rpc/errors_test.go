package rpc

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/service"
)

func TestErrorFrom(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{service.Errorf(service.EFORBIDDEN, "no"), CodeForbidden},
		{service.Errorf(service.ELIMIT, "too many"), CodeLimitExceeded},
		{fmt.Errorf("wrapped: %w", service.Errorf(service.ECONFLICT, "taken")), CodeConflict},
		{Errorf(CodeSocketRequired, "socket"), CodeSocketRequired},
		// A caller that went away is not a bug of the server's, and is
		// not logged as one.
		{fmt.Errorf("append: %w", context.Canceled), CodeUnavailable},
		{context.DeadlineExceeded, CodeUnavailable},
		{fmt.Errorf("disk on fire"), CodeInternalError},
	} {
		if got := ErrorFrom(tc.err); got.Code != tc.code {
			t.Errorf("ErrorFrom(%v) = %d %q, want code %d", tc.err, got.Code, got.Message, tc.code)
		}
	}
}
