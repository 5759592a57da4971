/**
 * @handoff/client-sdk — placeholder until the client-sdk issue lands. It re-exports the protocol
 * types so applications can already type their own Socket.IO / WebSocket code against Handoff.
 */
export type * from '@handoff/protocol';
