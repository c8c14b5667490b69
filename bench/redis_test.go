package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
)

// redisNodes is a redis-server, with the append-only file fsynced before
// each reply (the setting under which an acknowledged publication
// survives a crash of Redis, as the embedded engine's survive one of the
// node), and n switchboard nodes on it.
type redisNodes struct {
	redis *redistest.Server
	nodes []*proc
}

func startRedisNodes(tb testing.TB, n int) *redisNodes {
	tb.Helper()
	r := &redisNodes{redis: redistest.Start(tb, redistest.Options{AppendFsyncAlways: true})}
	for range n {
		r.nodes = append(r.nodes, startSwitchboard(tb, "SWITCHBOARD_ANONYMOUS_PUBLISH=>", "SWITCHBOARD_ANONYMOUS_SUBSCRIBE=>",
			"SWITCHBOARD_ENGINE=redis", "SWITCHBOARD_REDIS_URL="+r.redis.URL()))
	}
	return r
}

// clocks reads the CPU time of each node, then of Redis.
func (r *redisNodes) clocks(tb testing.TB) []time.Duration {
	tb.Helper()
	var ts []time.Duration
	for _, pid := range append(r.pids(), r.redis.PID()) {
		t, err := processCPU(pid)
		if err != nil {
			tb.Fatal(err)
		}
		ts = append(ts, t)
	}
	return ts
}

func (r *redisNodes) pids() []int {
	var pids []int
	for _, n := range r.nodes {
		pids = append(pids, n.pid)
	}
	return pids
}

// report reports the CPU each process spent between from and now, per
// op: node0-ns/unit, node1-ns/unit, …, redis-ns/unit.
func (r *redisNodes) report(b *testing.B, from []time.Duration, ops []int, unit string) {
	b.Helper()
	to := r.clocks(b)
	for i := range r.nodes {
		b.ReportMetric(float64(to[i]-from[i])/float64(ops[i]), fmt.Sprintf("node%d-ns/%s", i, unit))
	}
	last := len(to) - 1
	b.ReportMetric(float64(to[last]-from[last])/float64(ops[last]), "redis-ns/"+unit)
}

// BenchmarkRedisPublish is BenchmarkPublish on the Redis engine: one op
// is one publication acknowledged once Redis ran its script (and fsynced
// its append-only file). Each publisher keeps 64 in flight.
func BenchmarkRedisPublish(b *testing.B) {
	r := startRedisNodes(b, 1)
	benchPublish(b, r.nodes[0], func(b *testing.B) func() {
		from := r.clocks(b)
		return func() { r.report(b, from, []int{b.N, b.N}, "pub") }
	})
}

// BenchmarkRedisFanout is BenchmarkHubFanout over two nodes: the
// subscribers are split between them, and the publisher, keeping 16 in
// flight, is on node 0. One op is one delivery; each node's CPU is per
// delivery it made, Redis's per publication.
func BenchmarkRedisFanout(b *testing.B) {
	r := startRedisNodes(b, 2)
	for _, n := range []int{100, 1000} {
		channel := fmt.Sprintf("bench.fanout.%d", n)
		audiences := []*hubAudience{subscribeAudience(b, r.nodes[0], channel, n/2), subscribeAudience(b, r.nodes[1], channel, n-n/2)}
		ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
		pub, publish := publisher(ctx, b, r.nodes[0].addr, channel)
		publish(200) // warm up
		for _, a := range audiences {
			a.await(b, int64(200*len(a.conns)))
		}
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			messages := (b.N + n - 1) / n
			starts := []int64{audiences[0].delivered.Load(), audiences[1].delivered.Load()}
			b.ResetTimer()
			from := r.clocks(b)
			publish(messages)
			for i, a := range audiences {
				a.await(b, starts[i]+int64(messages*len(a.conns)))
			}
			b.StopTimer()
			r.report(b, from, []int{messages * len(audiences[0].conns), messages * len(audiences[1].conns), messages}, "delivery")
			b.ReportMetric(float64(messages*n)/b.Elapsed().Seconds(), "deliveries/s")
		})
		pub.CloseNow()
		cancel()
		for _, a := range audiences {
			a.close()
		}
	}
}

// BenchmarkRedisLatency is BenchmarkPublishLatency over two nodes, the
// subscribers split between them and the publisher on node 0: p50-µs and
// p99-µs are over every delivery of both.
func BenchmarkRedisLatency(b *testing.B) {
	r := startRedisNodes(b, 2)
	for _, tc := range []struct{ subscribers, rate int }{{2, 1000}, {100, 200}, {1000, 20}} {
		channel := fmt.Sprintf("bench.latency.%d", tc.subscribers)
		audiences := []*hubAudience{subscribeAudience(b, r.nodes[0], channel, tc.subscribers/2),
			subscribeAudience(b, r.nodes[1], channel, tc.subscribers-tc.subscribers/2)}
		b.Run(fmt.Sprintf("subscribers=%d/rate=%d", tc.subscribers, tc.rate), func(b *testing.B) {
			measureLatency(b, r.nodes[0], channel, tc.rate, audiences)
		})
		for _, a := range audiences {
			a.close()
		}
	}
}
