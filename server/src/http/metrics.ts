import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The server's Prometheus metrics, one registry per server instance. */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'handoff_connections',
    help: 'Open realtime connections by transport',
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
  readonly httpRequests = new Counter({
    name: 'handoff_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'handoff_process_' });
  }
}
