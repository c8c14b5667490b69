// Package bench holds Switchboard's end-to-end benchmarks: calls,
// publishing, fan-out, publish-to-delivery latency and idle connections,
// measured over real loopback sockets against the real binary (or, for
// the fan-out of the rpc layer alone, a server built from the rpc
// package), with the server's CPU time measured separately from the
// client's and a raw coder/websocket echo server as the baseline.
//
// Every benchmark lives in a _test.go file; this package has no other
// code. BENCHMARKS.md at the module root says how to run them and
// records the figures.
package bench
