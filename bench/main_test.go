package bench

import (
	"fmt"
	"os"
	"testing"
)

// roleEnv selects what a re-executed copy of the test binary does: serve
// as a baseline or fan-out server instead of running benchmarks. The
// benchmarks start those servers by running os.Args[0] with it set, so
// nothing besides the switchboard binary has to be built.
const roleEnv = "BENCH_ROLE"

func TestMain(m *testing.M) {
	switch role := os.Getenv(roleEnv); role {
	case "":
		code := m.Run()
		removeBuilt()
		os.Exit(code)
	case roleEcho:
		os.Exit(runRole(echoHandler()))
	case roleFanout:
		os.Exit(runRole(fanoutHandler()))
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown %s=%q\n", roleEnv, role)
		os.Exit(2)
	}
}
