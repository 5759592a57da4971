import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import type { Backend } from '../store/backend.js';
import { AdapterFanout, LocalFanout, type Fanout, type ServerSideEmitter } from './fanout.js';
import { attachShardedReceiver, ShardedFanout } from './sharded-fanout.js';
import type { TopicHub } from './topic-hub.js';

/**
 * The fan-out of an API node: in-process in embedded mode; in Redis mode per-topic sharded
 * channels (FANOUT=sharded, the default: the hub's watched topics drive the subscriptions) or,
 * with `adapter` (FANOUT=broadcast), the Socket.IO Redis adapter's server-side channel.
 */
export function createFanout(config: Config, backend: Backend, hub: TopicHub, log: Logger, metrics: Metrics, adapter?: ServerSideEmitter): Fanout {
  if (!backend.redis) return new LocalFanout(hub, log);
  if (adapter) return new AdapterFanout(hub, adapter, log);
  const fanout = new ShardedFanout(hub, backend.redis.pub, backend.keys, log);
  const receiver = attachShardedReceiver({
    hub,
    fanout,
    sub: backend.redis.sub,
    keys: backend.keys,
    log,
    onMessage: () => metrics.fanoutReceived.inc(),
  });
  hub.setSubscriptions(receiver);
  return fanout;
}
