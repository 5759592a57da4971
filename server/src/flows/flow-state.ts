import { topicOf, type FlowState } from '@handoff/protocol';
import type { FlowRecord } from './flow-record.js';

/** The public state object of a record: never the watch-token hash, never a session. */
export function toFlowState(record: FlowRecord): FlowState {
  const state: FlowState = {
    topic: topicOf(record.kind, record.id),
    kind: record.kind,
    id: record.id,
    state: record.state,
    version: record.version,
    expiresAt: new Date(record.expiresAt).toISOString(),
  };
  if (record.kind === 'qr' && record.scannedBy) state.scannedBy = record.scannedBy;
  if (record.kind === 'login' && record.state === 'failed' && record.error) state.error = record.error;
  return state;
}
