// Package web holds the browser-facing files the server serves: the
// TypeScript client's build, which npm writes into client/dist and the
// repository commits, so that building the server needs no Node; and the
// web console, plain modules and styles served as they are written.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed client/dist/switchboard.js client/dist/switchboard.d.ts
var dist embed.FS

// The TypeScript client (@switchboard/client): an ES module with no
// dependencies, and its type declarations.
var (
	ClientModule = mustLoad(dist, "client/dist/switchboard.js", true)
	ClientTypes  = mustLoad(dist, "client/dist/switchboard.d.ts", true)
)

// File is one embedded file with everything serving it needs, computed
// once at start rather than per request.
type File struct {
	Name        string // as served
	ContentType string
	// CrossOrigin lets pages of any origin load the file.
	CrossOrigin bool
	Body        []byte
	Gzip        []byte // Body gzip-compressed
	// ETag and GzipETag are strong ETags, each the hash of the bytes it
	// names: the two encodings are different bytes, so a strong
	// validator must tell them apart.
	ETag     string
	GzipETag string
}

// contentTypes are the types of the extensions the package serves.
var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".ts":   "application/typescript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".svg":  "image/svg+xml",
}

// mustLoad reads the embedded file at name. It cannot fail but for a
// bug: the build fails when an embedded file is missing.
func mustLoad(fsys embed.FS, name string, crossOrigin bool) *File {
	body, err := fsys.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("web: read embedded %s: %v", name, err))
	}
	base := path.Base(name)
	ctype, ok := contentTypes[path.Ext(base)]
	if !ok {
		panic(fmt.Sprintf("web: no content type for %s", name))
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // a valid level never fails
	if _, err := zw.Write(body); err != nil {
		panic(fmt.Sprintf("web: gzip %s: %v", name, err))
	}
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("web: gzip %s: %v", name, err))
	}
	return &File{Name: base, ContentType: ctype, CrossOrigin: crossOrigin, Body: body, Gzip: gz.Bytes(),
		ETag: etag(body), GzipETag: etag(gz.Bytes())}
}

// etag is a strong ETag for b: 128 bits of its SHA-256, in quotes.
func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// ServeHTTP answers GET and HEAD with f: gzip-compressed when the request
// accepts gzip, and 304 Not Modified when If-None-Match names the ETag of
// the encoding it would send.
func (f *File) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Browsers revalidate every time (a 304 when nothing changed), so that
	// a page sees an upgraded server's client at once.
	h.Set("Cache-Control", "no-cache")
	if f.CrossOrigin {
		// A module script from another origin is fetched in CORS mode,
		// and refused without this. Any origin is safe: the file is
		// public, the same for everyone, and no credentials are involved.
		h.Set("Access-Control-Allow-Origin", "*")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	// On every answer, identity ones too: caches must not hand a stored
	// identity copy to a client that asked for gzip, nor the reverse.
	h.Set("Vary", "Accept-Encoding")

	body, tag, gz := f.Body, f.ETag, acceptsGzip(r.Header.Values("Accept-Encoding"))
	if gz {
		body, tag = f.Gzip, f.GzipETag
	}
	h.Set("ETag", tag)
	if notModified(r.Header.Values("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.ContentType)
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body) // an error means the client went away: nothing left to tell it
	}
}

// acceptsGzip reports whether Accept-Encoding values accept gzip: they
// name gzip (or x-gzip, the same), or failing that *, with a q above 0
// (RFC 9110, section 12.5.3). A malformed q accepts nothing, since
// identity always works.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					var err error
					if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
						q = 0
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// notModified reports whether If-None-Match values name tag, or are *,
// by the weak comparison RFC 9110 asks of If-None-Match: W/ is ignored.
func notModified(values []string, tag string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == tag {
				return true
			}
		}
	}
	return false
}
