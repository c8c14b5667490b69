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

// TestCodeNames: SDKs export each code as a constant named after Name, so
// names must be unique identifiers; and a name says what the metrics label
// says, in PascalCase rather than snake_case.
func TestCodeNames(t *testing.T) {
	names, codes := map[string]bool{}, map[int]bool{}
	for _, c := range Codes {
		if !isIdentifier(c.Name) || c.Name[0] < 'A' || c.Name[0] > 'Z' {
			t.Errorf("code %d: name %q is not a PascalCase identifier", c.Code, c.Name)
		}
		if names[c.Name] || codes[c.Code] {
			t.Errorf("code %d (%s) is listed twice, by code or by name", c.Code, c.Name)
		}
		names[c.Name], codes[c.Code] = true, true
		if got := snakeCase(c.Name); got != codeName(c.Code) {
			t.Errorf("code %d: name %s is %s in snake_case, but its metrics label is %s", c.Code, c.Name, got, codeName(c.Code))
		}
	}
}

func snakeCase(s string) string {
	var b []byte
	for i, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' {
			if i > 0 {
				b = append(b, '_')
			}
			c |= 0x20
		}
		b = append(b, c)
	}
	return string(b)
}
