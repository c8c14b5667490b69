package service_test

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/service"
)

func TestValidateChannelValid(t *testing.T) {
	for _, name := range []string{
		"a",
		"Z",
		"0",
		"_",
		"-",
		":",
		"abcdefghijklmnopqrstuvwxyz",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"0123456789",
		"a_b-c:d",
		"news.sport.live",
		"a.b",
		"_._",
		"-.-",
		":.:",
		"user:42.inbox",
		strings.Repeat("x", service.MaxChannelLength),
		strings.Repeat("a.", service.MaxChannelLength/2) + "a", // 255 bytes
	} {
		if err := service.ValidateChannel(name); err != nil {
			t.Errorf("ValidateChannel(%q) = %v, want nil", name, err)
		}
	}
	if service.MaxChannelLength != 255 {
		t.Errorf("MaxChannelLength = %d, want 255", service.MaxChannelLength)
	}
}

func TestValidateChannelInvalid(t *testing.T) {
	for _, name := range []string{
		"",
		strings.Repeat("x", service.MaxChannelLength+1),
		strings.Repeat("a.", service.MaxChannelLength/2) + "ab", // 256 bytes
		strings.Repeat("x", 1000),
		" ",
		"a b",
		" a",
		"a ",
		"a/b",
		"/",
		"a*",
		"*",
		"a.*",
		">",
		"a.>",
		"a\tb",
		"a\nb",
		"a\x00b",
		"a\x7f",
		"a+b",
		"a#b",
		"a,b",
		"a@b",
		"a?b",
		"a=b",
		"a\\b",
		"a'b",
		"a\"b",
		"café",
		"日本",
		"a\u00a0b",
		"\xff",
		".",
		"..",
		".a",
		"a.",
		"a..b",
		"a.b.",
		".a.b",
		"a...b",
	} {
		err := service.ValidateChannel(name)
		if err == nil {
			t.Errorf("ValidateChannel(%q) = nil, want an error", name)
			continue
		}
		if code := service.ErrorCode(err); code != service.EINVALID {
			t.Errorf("ValidateChannel(%q): code %q, want %q", name, code, service.EINVALID)
		}
	}
}

// The character at fault is named as the caller wrote it: a whole rune,
// not its first byte read as Latin-1.
func TestValidateChannelNamesTheCharacter(t *testing.T) {
	for name, want := range map[string]string{
		"x.é":    `'é' is not allowed`,
		"日本":     `'日' is not allowed`,
		"a b":    `' ' is not allowed`,
		"a\xffb": `byte 0xff is not allowed`,
		"a\x00":  `'\x00' is not allowed`,
	} {
		msg := service.ErrorMessage(service.ValidateChannel(name))
		if !strings.Contains(msg, want) {
			t.Errorf("ValidateChannel(%q): %q does not say %q", name, msg, want)
		}
	}
}

// Every byte is either allowed or not, as the documented set says.
func TestValidateChannelEveryByte(t *testing.T) {
	allowed := func(b byte) bool {
		return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '_' || b == '-' || b == ':'
	}
	for i := 0; i < 256; i++ {
		b := byte(i)
		if b == '.' {
			continue
		}
		name := "a" + string([]byte{b}) + "b"
		err := service.ValidateChannel(name)
		if allowed(b) && err != nil {
			t.Errorf("ValidateChannel(%q) = %v, want nil", name, err)
		}
		if !allowed(b) && service.ErrorCode(err) != service.EINVALID {
			t.Errorf("ValidateChannel(%q) = %v, want an %q error", name, err, service.EINVALID)
		}
	}
}
