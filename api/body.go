package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// closeUnreadBodies closes the connection after any response to a request
// whose body was not read to its end: a refusal (401, 413, 429, …) must
// not wait for a body nobody will read. net/http would otherwise read up
// to 256 KiB of it before sending the response, at whatever pace the
// client sends it.
func closeUnreadBodies(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			return next(c)
		}
		body := &eofReader{ReadCloser: r.Body}
		r.Body = body
		c.Response().Before(func() {
			if !body.eof {
				c.Response().Header().Set(echo.HeaderConnection, "close")
			}
		})
		if err := next(c); err != nil {
			c.Error(err) // now, to know whether the body was read
		}
		if !body.eof {
			// Even so, net/http reads what is left of a small body once
			// the response is sent, to reuse the connection; this ends
			// that read.
			http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(lingerUnreadBody))
		}
		return nil
	}
}

// lingerUnreadBody is how long the rest of a refused body is still read,
// once the response is sent, before the connection is closed. Closing at
// once, with the body still arriving, would reset the connection, which
// can destroy the response before the client reads it (net/http waits as
// long for the same reason).
const lingerUnreadBody = 500 * time.Millisecond

// eofReader records whether its reader reached the end.
type eofReader struct {
	io.ReadCloser
	eof bool
}

func (r *eofReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		r.eof = true
	}
	return n, err
}

// tooLarge is the refusal of a body over the message size limit.
func tooLarge() error {
	return refusal(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds the message size limit")
}

// readBody reads the request body, at most limit bytes, and frees the
// connection of the read deadline that bounded it: the call that follows
// may take longer, and net/http would cancel its context when the
// deadline passes.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	if c.Request().ContentLength > limit {
		// Refused before a byte of it is read: a client that sent
		// Expect: 100-continue then never sends the body, and reads the
		// refusal rather than a connection reset.
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, tooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, refusal(http.StatusRequestTimeout, "request_timeout", "the request body did not arrive within the read timeout")
	case err != nil:
		return nil, refusal(http.StatusBadRequest, "bad_request", "reading the request body failed")
	}
	http.NewResponseController(c.Response()).SetReadDeadline(time.Time{})
	return body, nil
}

// peekWait is how long a refusal waits for the body it would like to
// echo ids from: a client sends a small request's body with its headers,
// and a slow one is not waited for.
const peekWait = 100 * time.Millisecond

// peekBody reads the body, at most limit bytes, that arrives within
// peekWait, and returns what came: all of it, or a part, or nothing.
func peekBody(c echo.Context, limit int64) []byte {
	http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(peekWait))
	b, _ := io.ReadAll(io.LimitReader(c.Request().Body, limit))
	return b
}
