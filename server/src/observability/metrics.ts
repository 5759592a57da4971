import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { withDeadline } from '../lib/deadline.js';
import type { QueueFactory } from '../queue/job-queue.js';
import type { RedisConnectionName, RedisWatch } from '../store/backend.js';

/** Longest a scrape waits for one queue's counts (Redis may be down); then that queue reports nothing. */
const QUEUE_COUNTS_TIMEOUT_MS = 1_000;

/**
 * The server's Prometheus metrics, one registry per server instance. Names, labels and meaning
 * are listed in docs/operations.md (Health, readiness and metrics).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'handoff_connections',
    help: 'Open realtime connections by transport (socket.io, websocket, long-poll: held long-poll requests)',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly subscriptions = new Gauge({
    name: 'handoff_subscriptions',
    help: 'Active topic subscriptions on this node by transport',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly flowsCreated = new Counter({
    name: 'handoff_flows_created_total',
    help: 'Flows created by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly flowsFinished = new Counter({
    name: 'handoff_flows_finished_total',
    help: 'Flows that reached a final state, by kind and state (counted on the node that committed it)',
    labelNames: ['kind', 'state'] as const,
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'handoff_pushes_total',
    help: 'States delivered to local subscribers, by transport',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly pushLatency = new Histogram({
    name: 'handoff_push_latency_seconds',
    help: 'Time from the commit of a transition to its delivery to this node\'s subscribers, by origin (local: committed on this node; remote: another node or a worker, through Redis)',
    labelNames: ['origin'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'handoff_resyncs_total',
    help: 'Times this node re-pushed the current state of its subscribed topics after its Redis subscriber reconnected, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly fanoutReceived = new Counter({
    name: 'handoff_fanout_messages_received_total',
    help: 'Fan-out messages (committed states of other processes) this node received from Redis (FANOUT=sharded)',
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'handoff_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'handoff_rate_limited_total',
    help: 'Requests refused with 429 rate_limited, by limit (qr-ip: POST /v1/qr per client IP)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  /**
   * The common name and labels of HTTP server dashboards (express-prom-bundle, fastify-metrics):
   * `route` is the route template (`/v1/qr/:id/scan`), never the URL, so ids never become labels.
   */
  readonly httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Duration of HTTP requests from arrival to the end of the response, by method, route template and status code (long-polls last up to their wait)',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: 'handoff_job_duration_seconds',
    help: 'Duration of job attempts run by this process\'s queue workers, by queue and outcome (completed, failed)',
    labelNames: ['queue', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly redisErrors = new Counter({
    name: 'handoff_redis_errors_total',
    help: 'Redis errors by connection (command, pub, sub, queue, queue-worker) and kind (connection: an ioredis error event; command: a failed command)',
    labelNames: ['connection', 'kind'] as const,
    registers: [this.registry],
  });
  readonly redisUnreplicated = new Counter({
    name: 'handoff_redis_unreplicated_total',
    help: 'Flow transitions to confirmed/succeeded or a final state answered before a replica acked them (WAIT REDIS_WAIT_REPLICAS timed out after REDIS_WAIT_TIMEOUT_MS): lost if the master dies before replicating',
    registers: [this.registry],
  });
  readonly draining = new Gauge({
    name: 'handoff_draining',
    help: '1 while this node shuts down gracefully (readiness fails, connections are being drained)',
    registers: [this.registry],
  });
  private queueFactories: QueueFactory[] = [];
  private redisWatch: RedisWatch | null = null;

  constructor() {
    // No prefix: the standard names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, …)
    // that stock Node.js dashboards and alerts query.
    collectDefaultMetrics({ register: this.registry });
    const metrics = this;
    new Gauge({
      name: 'handoff_queue_jobs',
      help: 'Jobs in each queue (logins, codes, webhooks) by state (waiting, active, delayed), read from the queue at scrape time',
      labelNames: ['queue', 'state'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const queues = metrics.queueFactories.flatMap((f) => f.list());
        await Promise.all(
          queues.map(async (queue) => {
            try {
              const counts = await withDeadline(queue.counts(), QUEUE_COUNTS_TIMEOUT_MS);
              for (const state of ['waiting', 'active', 'delayed'] as const) this.set({ queue: queue.name, state }, counts[state]);
            } catch {
              // Redis is down: this queue reports no sample rather than a stale one.
            }
          }),
        );
      },
    });
    new Gauge({
      name: 'handoff_redis_connected',
      help: 'Per Redis connection kind: 1 when every connection of that kind is ready, else 0 (Redis mode only)',
      labelNames: ['connection'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const byName = new Map<RedisConnectionName, boolean>();
        for (const { name, client } of metrics.redisWatch?.connections ?? []) {
          byName.set(name, (byName.get(name) ?? true) && client.status === 'ready');
        }
        for (const [name, up] of byName) this.set({ connection: name }, up ? 1 : 0);
      },
    });
  }

  /** Report the depth and the job durations of a backend's queues. */
  attachQueues(factory: QueueFactory): void {
    this.queueFactories.push(factory);
    factory.observe((queue, outcome, seconds) => this.jobDuration.observe({ queue, outcome }, seconds));
  }

  /** Count the errors of a backend's Redis connections and report their status. */
  attachRedis(watch: RedisWatch): void {
    this.redisWatch = watch;
    watch.on('connection-error', (connection) => this.redisErrors.inc({ connection, kind: 'connection' }));
    watch.on('command-failed', (connection) => this.redisErrors.inc({ connection, kind: 'command' }));
    watch.on('unreplicated', () => this.redisUnreplicated.inc());
  }
}
