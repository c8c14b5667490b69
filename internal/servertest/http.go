package servertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// Bearer returns the header that carries tok.
func Bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// HTTPResult is an HTTP response with its body read.
type HTTPResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends an HTTP request to the server and reads the whole response.
func (s *Server) Do(method, path string, header http.Header, body []byte) HTTPResult {
	s.T.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.BaseURL()+path, r)
	if err != nil {
		s.T.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		s.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.T.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return HTTPResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Post sends body to POST /rpc as JSON, with header added.
func (s *Server) Post(header http.Header, body []byte) HTTPResult {
	s.T.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	for k, vs := range header {
		h[k] = vs
	}
	return s.Do(http.MethodPost, "/rpc", h, body)
}

// Call makes one JSON-RPC call over POST /rpc with header.
func (s *Server) Call(header http.Header, method string, params any) (Reply, HTTPResult) {
	s.T.Helper()
	body, id := Request(method, params)
	res := s.Post(header, body)
	if res.Status != http.StatusOK {
		s.T.Fatalf("POST %s: HTTP %d: %s", method, res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.T.Fatalf("POST %s: Content-Type %q, want application/json", method, ct)
	}
	return DecodeReply(s.T, method, res.Body, id), res
}

// httpErrorBody is the JSON body of the server's HTTP errors.
type httpErrorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WantHTTPError checks that res is an HTTP error with status and a JSON
// error body of code, and returns the body's message.
func WantHTTPError(t *testing.T, what string, status int, hdr http.Header, body []byte, wantStatus int, wantCode string) string {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e httpErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", what, body, err)
	}
	if e.Error == nil {
		t.Fatalf("%s: body %s has no error object", what, body)
	}
	if e.Error.Code != wantCode {
		t.Errorf("%s: error code %q, want %q", what, e.Error.Code, wantCode)
	}
	if e.Error.Message == "" {
		t.Errorf("%s: error message is empty", what)
	}
	return e.Error.Message
}

// WantRefusedUpgrade checks that a WebSocket dial failed with an HTTP
// error response (status, JSON error body of code) rather than an upgrade,
// and returns the error message.
func WantRefusedUpgrade(t *testing.T, what string, ws *websocket.Conn, resp *http.Response, err error, status int, code string) string {
	t.Helper()
	if err == nil || ws != nil {
		t.Fatalf("%s: the WebSocket upgrade succeeded; want HTTP %d", what, status)
	}
	if resp == nil {
		t.Fatalf("%s: dial failed without an HTTP response: %v", what, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "" {
		t.Fatalf("%s: the server answered with an upgrade (status %d, Upgrade %q)", what, resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	body, rerr := io.ReadAll(resp.Body)
	if rerr != nil {
		t.Fatalf("%s: read body: %v", what, rerr)
	}
	return WantHTTPError(t, what, resp.StatusCode, resp.Header, body, status, code)
}

// WantUnauthorizedRPC checks that res, the answer to a POST /rpc of the
// call id, is HTTP 401 with a JSON-RPC error -32001 for that id, and
// returns its message.
func WantUnauthorizedRPC(t *testing.T, what string, res HTTPResult, id int64) string {
	t.Helper()
	if res.Status != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: HTTP %d %q, want 401 with JSON", what, res.Status, res.Header.Get("Content-Type"))
	}
	r := DecodeReply(t, what, res.Body, id)
	if r.Error == nil || r.Error.Code != -32001 {
		t.Fatalf("%s: error %+v, want -32001", what, r.Error)
	}
	return r.Error.Message
}

// PublishHTTP publishes data (JSON) to channel over POST /rpc.
func PublishHTTP(t *testing.T, c *Server, tok, channel, data string) PublishResult {
	t.Helper()
	r, _ := c.Call(Bearer(tok), "channelPublish", map[string]any{"channel": channel, "data": json.RawMessage(data)})
	var res PublishResult
	r.Decode(t, &res)
	if res.Channel != channel || res.Duplicate {
		t.Fatalf("publish to %s: %+v", channel, res)
	}
	return res
}

// HistoryBatch is a batch of n channelHistory calls of a page of 1000.
func HistoryBatch(n int, channel string) []byte {
	calls := make([]map[string]any, n)
	for i := range calls {
		calls[i] = map[string]any{"jsonrpc": "2.0", "id": i, "method": "channelHistory",
			"params": map[string]any{"channel": channel, "limit": 1000}}
	}
	b, _ := json.Marshal(calls)
	return b
}

// DoHost makes a request of the server with the Host header host.
func (s *Server) DoHost(method, path, host string, body []byte) HTTPResult {
	s.T.Helper()
	req, err := http.NewRequest(method, s.BaseURL()+path, bytes.NewReader(body))
	if err != nil {
		s.T.Fatal(err)
	}
	req.Host = host
	resp, err := s.HTTP.Do(req)
	if err != nil {
		s.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return HTTPResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
