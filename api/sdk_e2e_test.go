package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/web"
)

// TestServedClient fetches the TypeScript client from a running server as
// a browser would import it: public, cacheable until it changes,
// compressed when asked, readable from another origin.
func TestServedClient(t *testing.T) {
	ta := servertest.Start(t, server.Config{})

	// The server asks for tokens, so that the routes' needing none means
	// something.
	if res := ta.Post(nil, []byte(`{"jsonrpc":"2.0","id":1,"method":"serverPing"}`)); res.Status != http.StatusUnauthorized {
		t.Fatalf("POST /rpc without a token: HTTP %d, want 401", res.Status)
	}

	for _, tc := range []struct {
		path        string
		file        *web.File
		contentType string
	}{
		{"/sdk/switchboard.js", web.ClientModule, "text/javascript; charset=utf-8"},
		{"/sdk/switchboard.d.ts", web.ClientTypes, "application/typescript; charset=utf-8"},
	} {
		t.Run(tc.file.Name, func(t *testing.T) {
			onDisk, err := os.ReadFile("../web/client/dist/" + tc.file.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tc.file.Body, onDisk) {
				t.Fatalf("the embedded %s differs from web/client/dist's", tc.file.Name)
			}

			// No token, and another origin: as a page elsewhere imports it.
			plain := ta.Do(http.MethodGet, tc.path, http.Header{
				"Accept-Encoding": {"identity"}, "Origin": {"https://app.example"}}, nil)
			if plain.Status != http.StatusOK {
				t.Fatalf("GET without a token: HTTP %d: %s", plain.Status, plain.Body)
			}
			if !bytes.Equal(plain.Body, onDisk) {
				t.Errorf("GET: body %q, want web/client/dist's %q", plain.Body, onDisk)
			}
			for k, want := range map[string]string{
				"Content-Type":                tc.contentType,
				"Cache-Control":               "no-cache",
				"Access-Control-Allow-Origin": "*",
				"X-Content-Type-Options":      "nosniff",
				"Vary":                        "Accept-Encoding",
				"ETag":                        tc.file.ETag,
				"Content-Encoding":            "",
			} {
				if got := plain.Header.Get(k); got != want {
					t.Errorf("GET: %s %q, want %q", k, got, want)
				}
			}

			// A token the server would refuse changes nothing: the route
			// does not look.
			if res := ta.Do(http.MethodGet, tc.path, servertest.Bearer("not-a-token"), nil); res.Status != http.StatusOK {
				t.Errorf("GET with an invalid token: HTTP %d, want 200", res.Status)
			}

			zipped := ta.Do(http.MethodGet, tc.path, http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}}, nil)
			if zipped.Status != http.StatusOK || zipped.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("GET accepting gzip: HTTP %d, Content-Encoding %q", zipped.Status, zipped.Header.Get("Content-Encoding"))
			}
			if got := zipped.Header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("GET accepting gzip: Vary %q", got)
			}
			zr, err := gzip.NewReader(bytes.NewReader(zipped.Body))
			if err != nil {
				t.Fatalf("gzip body: %v", err)
			}
			unzipped, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("gzip body: %v", err)
			}
			if !bytes.Equal(unzipped, onDisk) {
				t.Errorf("gzip body decompresses to %q, want %q", unzipped, onDisk)
			}
			gzTag := zipped.Header.Get("ETag")
			if gzTag == "" || gzTag == tc.file.ETag {
				t.Errorf("gzip ETag %q: want one of its own, not the identity encoding's %q", gzTag, tc.file.ETag)
			}

			// A revalidation of either encoding's copy costs a 304.
			for _, rv := range []struct{ encoding, tag string }{{"identity", tc.file.ETag}, {"gzip", gzTag}} {
				res := ta.Do(http.MethodGet, tc.path, http.Header{
					"Accept-Encoding": {rv.encoding}, "If-None-Match": {`"stale", ` + rv.tag}}, nil)
				if res.Status != http.StatusNotModified || len(res.Body) != 0 {
					t.Errorf("If-None-Match %s (%s): HTTP %d with %d bytes, want 304 and none", rv.tag, rv.encoding, res.Status, len(res.Body))
				}
				if got := res.Header.Get("ETag"); got != rv.tag {
					t.Errorf("304 (%s): ETag %q, want %q", rv.encoding, got, rv.tag)
				}
			}
			if res := ta.Do(http.MethodGet, tc.path, http.Header{"If-None-Match": {`"stale"`}}, nil); res.Status != http.StatusOK {
				t.Errorf("If-None-Match of another ETag: HTTP %d, want 200", res.Status)
			}

			head := ta.Do(http.MethodHead, tc.path, http.Header{"Accept-Encoding": {"identity"}}, nil)
			if head.Status != http.StatusOK || len(head.Body) != 0 {
				t.Errorf("HEAD: HTTP %d with %d bytes, want 200 and none", head.Status, len(head.Body))
			}
			for _, k := range []string{"Content-Type", "ETag", "Content-Length", "Access-Control-Allow-Origin"} {
				if got, want := head.Header.Get(k), plain.Header.Get(k); got != want {
					t.Errorf("HEAD: %s %q, want GET's %q", k, got, want)
				}
			}

			if res := ta.Do(http.MethodPost, tc.path, nil, nil); res.Status != http.StatusMethodNotAllowed {
				t.Errorf("POST: HTTP %d, want 405", res.Status)
			}
		})
	}
}
