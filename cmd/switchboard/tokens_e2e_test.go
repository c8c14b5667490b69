package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryTokensOfAPrivateKey: a server given a public key takes the
// tokens that token create signs with its private half, chosen by kid,
// and refuses a kid it does not know; both as the binaries do it.
func TestBinaryTokensOfAPrivateKey(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubFile, privFile := filepath.Join(dir, "issuer.pem"), filepath.Join(dir, "issuer-key.pem")
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"kid": "ed-1"}, Bytes: pubDER}), 0o600)
	os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600)

	s := startCLIServer(t, "", "", "--token-public-key", pubFile)
	tok := cliToken(t, t.TempDir(), "--sub", "erin", "--subscribe", "news.>", "--private-key", privFile, "--kid", "ed-1")
	out := mustRun(t, []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + tok}, "", "call", "sessionWhoami")
	var w struct{ User string }
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.User != "erin" {
		t.Errorf("sessionWhoami with the private key's token printed %q (%v)", out, err)
	}

	other := cliToken(t, t.TempDir(), "--sub", "erin", "--private-key", privFile, "--kid", "ed-2")
	r := runCLI(t, []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + other}, "", "call", "sessionWhoami")
	if r.code == 0 || !strings.Contains(r.stderr, "ed-2") {
		t.Errorf("a token of an unknown kid: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBinary(t, nil, "token", "create", "--sub", "erin", "--private-key", privFile, "--alg", "RS256"); r.code != 2 || !strings.Contains(r.stderr, "RS256") {
		t.Errorf("an Ed25519 key asked for RS256: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestREADMECutOffExample runs the README's adminDisconnect and
// adminRevoke example against a server where mallory is connected, and
// checks what it prints and that her token no longer works.
func TestREADMECutOffExample(t *testing.T) {
	doc := readme(t)
	section := doc[strings.Index(doc, "### Cutting a user off"):]
	start := strings.Index(section, "```sh\n") + len("```sh\n")
	script := section[start : start+strings.Index(section[start:], "```")]

	s := startCLIServer(t, "", "")
	mallory := cliToken(t, s.dir, "--sub", "mallory", "--subscribe", "news.>")
	sub := startCLI(t, []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + mallory}, "subscribe", "news.today")
	s.waitSubscribed(t, "news.today", 1)

	bin := t.TempDir()
	if err := os.Symlink(binary(t), filepath.Join(bin, "switchboard")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Env = append(environ(), append(s.env, "PATH="+bin+":"+os.Getenv("PATH"))...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README example failed: %v\n%s", err, out)
	}
	for _, line := range strings.Split(script, "\n") {
		if want, ok := strings.CutPrefix(line, "# "); ok && !strings.Contains(string(out), want) {
			t.Errorf("the README example's output lacks %q:\n%s", want, out)
		}
	}
	if code := sub.wait(); code != exitConnect {
		t.Errorf("mallory's subscribe exited %d, want %d", code, exitConnect)
	}
	r := runCLI(t, []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + mallory}, "", "call", "sessionWhoami")
	if r.code != exitConnect || !strings.Contains(r.stderr, "revoked") {
		t.Errorf("mallory's token after the example: exit %d, stderr %q", r.code, r.stderr)
	}
}
