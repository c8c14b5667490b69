package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// newMetricsServer serves h at /metrics, and nothing else, to anyone who
// reaches it: --metrics-listen names an address only operators reach.
func newMetricsServer(h http.Handler, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// serveMetrics serves s on ln until it is shut down.
func serveMetrics(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
