package server

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard/switchboard/embedded"
	"github.com/switchboard/switchboard/redis"
	"github.com/switchboard/switchboard/service"
)

// Engines that Config.Engine may name.
const (
	EngineEmbedded = "embedded" // SQLite in the data directory; one node
	EngineRedis    = "redis"    // Redis shared by several nodes
)

// Redis configures the Redis engine.
type Redis struct {
	URL         string // redis:// or rediss://, with user, password and database
	Cluster     bool   // URL names a Redis Cluster node; more as ?addr=host:port
	CACertFile  string // PEM certificates to trust for rediss://; "" for the system's
	Prefix      string // of every key; "" for redis.DefaultOptions'
	PresenceTTL time.Duration
	// WaitReplicas, when above 0, acknowledges a publish only once that
	// many replicas have it, waiting at most WaitTimeout.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// engine is what the server needs of either engine.
type engine interface {
	service.Engine
	Err() error // why /readyz fails, or nil
	Close() error
}

// openEngine opens the engine cfg names, "" being the embedded one.
func openEngine(cfg Config, node service.Node, logger *slog.Logger) (engine, error) {
	switch strings.ToLower(cfg.Engine) {
	case "", EngineEmbedded:
		if cfg.Redis.URL != "" {
			return nil, configErrorf("--redis-url is for --engine redis")
		}
		return embedded.Open(filepath.Join(cfg.DataDir, HistoryFile), embedded.Options{
			MaxPublications:   cfg.HistorySize,
			MaxAge:            cfg.HistoryTTL,
			IdempotencyWindow: cfg.IdempotencyWindow,
			Logger:            logger,
		})
	case EngineRedis:
		if cfg.Redis.URL == "" {
			return nil, configErrorf("--engine redis needs --redis-url, such as redis://127.0.0.1:6379/0")
		}
		roots, err := certPool(cfg.Redis.CACertFile)
		if err != nil {
			return nil, err
		}
		e, err := redis.Open(redis.Options{
			URL: cfg.Redis.URL, Cluster: cfg.Redis.Cluster, RootCAs: roots, Prefix: cfg.Redis.Prefix, Node: node.ID,
			MaxPublications: cfg.HistorySize, MaxAge: cfg.HistoryTTL, IdempotencyWindow: cfg.IdempotencyWindow,
			PresenceTTL: cfg.Redis.PresenceTTL, WaitReplicas: cfg.Redis.WaitReplicas, WaitTimeout: cfg.Redis.WaitTimeout,
			Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("redis engine: %w", err)
		}
		return e, nil
	}
	return nil, configErrorf("--engine %q: want embedded or redis", cfg.Engine)
}

// certPool reads the PEM certificates in path; nil for "".
func certPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--redis-cacert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, configErrorf("--redis-cacert %s: no PEM certificate in it", path)
	}
	return pool, nil
}
