package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
)

// TestFiles: what is served is what npm built, compressed once, with
// ETags that change with the bytes.
func TestFiles(t *testing.T) {
	for _, f := range []*File{ClientModule, ClientTypes} {
		onDisk, err := os.ReadFile("client/dist/" + f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Body, onDisk) {
			t.Errorf("%s: embedded bytes differ from client/dist's", f.Name)
		}
		zr, err := gzip.NewReader(bytes.NewReader(f.Gzip))
		if err != nil {
			t.Fatalf("%s: gzip: %v", f.Name, err)
		}
		if b, err := io.ReadAll(zr); err != nil || !bytes.Equal(b, f.Body) {
			t.Errorf("%s: gzip copy decompresses to %q (%v), want the body", f.Name, b, err)
		}
		for tag, b := range map[string][]byte{f.ETag: f.Body, f.GzipETag: f.Gzip} {
			sum := sha256.Sum256(b)
			if want := `"` + hex.EncodeToString(sum[:16]) + `"`; tag != want {
				t.Errorf("%s: ETag %s, want %s, the hash of its bytes", f.Name, tag, want)
			}
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                     false,
		"identity":             false,
		"gzip":                 true,
		"GZIP":                 true,
		"x-gzip":               true,
		"gzip, deflate, br":    true,
		"br;q=1.0, gzip;q=0.5": true,
		"gzip;q=0":             false,
		"gzip; q=0.000":        false,
		"gzip;q=nonsense":      false,
		"*":                    true,
		"*;q=0":                false,
		"gzip;q=0, *":          false, // gzip named outright overrides *
		"*;q=0, gzip":          true,
		"deflate":              false,
	} {
		if got := acceptsGzip([]string{header}); got != want {
			t.Errorf("Accept-Encoding %q: acceptsGzip %v, want %v", header, got, want)
		}
	}
	if !acceptsGzip([]string{"br", "gzip"}) {
		t.Error("gzip in a second Accept-Encoding header line is not seen")
	}
}

func TestNotModified(t *testing.T) {
	const tag = `"abc"`
	for header, want := range map[string]bool{
		`"abc"`:       true,
		`W/"abc"`:     true, // If-None-Match compares weakly
		`"x", "abc"`:  true,
		`*`:           true,
		`"abcd"`:      false,
		`abc`:         false,
		`"x",  W/"y"`: false,
	} {
		if got := notModified([]string{header}, tag); got != want {
			t.Errorf("If-None-Match %s: notModified %v, want %v", header, got, want)
		}
	}
}

// TestServeHTTP: a 304 and a HEAD carry no body, and a 304 none of the
// body's own headers.
func TestServeHTTP(t *testing.T) {
	serve := func(method string, header http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/sdk/"+ClientModule.Name, nil)
		r.Header = header
		w := httptest.NewRecorder()
		ClientModule.ServeHTTP(w, r)
		return w
	}

	w := serve(http.MethodGet, http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {ClientModule.GzipETag}})
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match the gzip ETag: HTTP %d with %d bytes, want 304 and none", w.Code, w.Body.Len())
	}
	for _, k := range []string{"Content-Type", "Content-Encoding", "Content-Length"} {
		if v := w.Header().Get(k); v != "" {
			t.Errorf("304: %s %q, want none", k, v)
		}
	}
	if got := w.Header().Get("ETag"); got != ClientModule.GzipETag {
		t.Errorf("304: ETag %q, want %q", got, ClientModule.GzipETag)
	}

	// The identity ETag does not match a request for gzip: the client's
	// copy is of the other encoding, and it gets the gzip one whole.
	w = serve(http.MethodGet, http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {ClientModule.ETag}})
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), ClientModule.Gzip) {
		t.Errorf("gzip asked with the identity ETag: HTTP %d, want 200 and the gzip copy", w.Code)
	}

	w = serve(http.MethodHead, http.Header{})
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD: HTTP %d with %d bytes, want 200 and none", w.Code, w.Body.Len())
	}
	if got, want := w.Header().Get("Content-Length"), len(ClientModule.Body); got != strconv.Itoa(want) {
		t.Errorf("HEAD: Content-Length %s, want the body's %d", got, want)
	}
}
