package server

// connectionCeiling returns the most WebSocket connections the process can
// hold with the file descriptors it may open, less a reserve for what else
// needs them: HTTP requests (health checks and admin calls among them),
// the history's files, logs. It returns 0 when the limit is unknown or
// unlimited. A sixteenth is reserved, and at least 32 descriptors or half
// of a small limit.
func connectionCeiling() (ceiling, fdLimit int) {
	n := descriptorLimit()
	if n <= 0 {
		return 0, 0
	}
	reserve := max(n/16, min(32, n/2))
	return n - reserve, n
}
