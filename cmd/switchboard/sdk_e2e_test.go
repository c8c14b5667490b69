package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/switchboard/switchboard/web"
)

// TestServedClient fetches the TypeScript client from a running server as
// a browser would import it: public, cacheable until it changes,
// compressed when asked, readable from another origin.
func TestServedClient(t *testing.T) {
	ta := startApp(t, serveConfig{})

	// The server asks for tokens, so that the routes' needing none means
	// something.
	if res := ta.post(nil, []byte(`{"jsonrpc":"2.0","id":1,"method":"serverPing"}`)); res.status != http.StatusUnauthorized {
		t.Fatalf("POST /rpc without a token: HTTP %d, want 401", res.status)
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
			onDisk, err := os.ReadFile("../../web/client/dist/" + tc.file.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tc.file.Body, onDisk) {
				t.Fatalf("the embedded %s differs from web/client/dist's", tc.file.Name)
			}

			// No token, and another origin: as a page elsewhere imports it.
			plain := ta.do(http.MethodGet, tc.path, http.Header{
				"Accept-Encoding": {"identity"}, "Origin": {"https://app.example"}}, nil)
			if plain.status != http.StatusOK {
				t.Fatalf("GET without a token: HTTP %d: %s", plain.status, plain.body)
			}
			if !bytes.Equal(plain.body, onDisk) {
				t.Errorf("GET: body %q, want web/client/dist's %q", plain.body, onDisk)
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
				if got := plain.header.Get(k); got != want {
					t.Errorf("GET: %s %q, want %q", k, got, want)
				}
			}

			// A token the server would refuse changes nothing: the route
			// does not look.
			if res := ta.do(http.MethodGet, tc.path, bearer("not-a-token"), nil); res.status != http.StatusOK {
				t.Errorf("GET with an invalid token: HTTP %d, want 200", res.status)
			}

			zipped := ta.do(http.MethodGet, tc.path, http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}}, nil)
			if zipped.status != http.StatusOK || zipped.header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("GET accepting gzip: HTTP %d, Content-Encoding %q", zipped.status, zipped.header.Get("Content-Encoding"))
			}
			if got := zipped.header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("GET accepting gzip: Vary %q", got)
			}
			zr, err := gzip.NewReader(bytes.NewReader(zipped.body))
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
			gzTag := zipped.header.Get("ETag")
			if gzTag == "" || gzTag == tc.file.ETag {
				t.Errorf("gzip ETag %q: want one of its own, not the identity encoding's %q", gzTag, tc.file.ETag)
			}

			// A revalidation of either encoding's copy costs a 304.
			for _, rv := range []struct{ encoding, tag string }{{"identity", tc.file.ETag}, {"gzip", gzTag}} {
				res := ta.do(http.MethodGet, tc.path, http.Header{
					"Accept-Encoding": {rv.encoding}, "If-None-Match": {`"stale", ` + rv.tag}}, nil)
				if res.status != http.StatusNotModified || len(res.body) != 0 {
					t.Errorf("If-None-Match %s (%s): HTTP %d with %d bytes, want 304 and none", rv.tag, rv.encoding, res.status, len(res.body))
				}
				if got := res.header.Get("ETag"); got != rv.tag {
					t.Errorf("304 (%s): ETag %q, want %q", rv.encoding, got, rv.tag)
				}
			}
			if res := ta.do(http.MethodGet, tc.path, http.Header{"If-None-Match": {`"stale"`}}, nil); res.status != http.StatusOK {
				t.Errorf("If-None-Match of another ETag: HTTP %d, want 200", res.status)
			}

			head := ta.do(http.MethodHead, tc.path, http.Header{"Accept-Encoding": {"identity"}}, nil)
			if head.status != http.StatusOK || len(head.body) != 0 {
				t.Errorf("HEAD: HTTP %d with %d bytes, want 200 and none", head.status, len(head.body))
			}
			for _, k := range []string{"Content-Type", "ETag", "Content-Length", "Access-Control-Allow-Origin"} {
				if got, want := head.header.Get(k), plain.header.Get(k); got != want {
					t.Errorf("HEAD: %s %q, want GET's %q", k, got, want)
				}
			}

			if res := ta.do(http.MethodPost, tc.path, nil, nil); res.status != http.StatusMethodNotAllowed {
				t.Errorf("POST: HTTP %d, want 405", res.status)
			}
		})
	}
}
