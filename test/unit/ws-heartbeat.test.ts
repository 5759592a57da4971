/**
 * The /v1/ws heartbeat spread over its interval (realtime/ws-heartbeat.ts): each sub-tick pings one
 * slot of the peers, every peer is still pinged once per interval, and "a peer that missed two pings
 * is dropped" stays exact (counted in visits, one per interval).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { heartbeatSlots, SpreadHeartbeat, type HeartbeatPeer } from '../../server/src/realtime/ws-heartbeat.js';

class Peer implements HeartbeatPeer {
  missedPings = 0;
  pings = 0;
  terminated = false;
  constructor(readonly answers: boolean) {}
  ping(): void {
    this.pings++;
    if (this.answers) this.missedPings = 0; // the pong, as the gateway's 'pong' handler does
  }
  terminate(): void {
    this.terminated = true;
  }
}

afterEach(() => vi.useRealTimers());

describe('the /v1/ws heartbeat', () => {
  it('cuts the 25 s default into 1,000 sub-ticks of 25 ms, a short interval into sub-ticks of at least 25 ms', () => {
    expect(heartbeatSlots(25_000)).toBe(1000);
    expect(heartbeatSlots(150)).toBe(6);
    expect(heartbeatSlots(10)).toBe(1);
  });

  it('pings 1,000 peers spread over the interval: each once per interval, no tick more than 1,000/slots', () => {
    vi.useFakeTimers();
    const hb = new SpreadHeartbeat<Peer>(1000, 20);
    const peers = Array.from({ length: 1000 }, () => new Peer(true));
    for (const p of peers) hb.add(p);
    const perTick: number[] = [];
    const tick = hb.tick.bind(hb);
    hb.tick = () => {
      const n = tick();
      perTick.push(n);
      return n;
    };
    hb.start();
    vi.advanceTimersByTime(3000); // three intervals
    hb.stop();
    expect(perTick).toHaveLength(60);
    expect(Math.max(...perTick)).toBe(50);
    expect(peers.every((p) => p.pings === 3)).toBe(true);
  });

  it('drops a peer that missed two pings at its third visit, and keeps the ones that answer', () => {
    const hb = new SpreadHeartbeat<Peer>(1000, 4);
    const dead = new Peer(false);
    const alive = Array.from({ length: 7 }, () => new Peer(true));
    hb.add(dead);
    for (const p of alive) hb.add(p);
    const visit = () => {
      for (let i = 0; i < hb.slotCount; i++) hb.tick();
    };
    visit();
    visit();
    expect(dead.terminated).toBe(false);
    expect(dead.pings).toBe(2);
    visit();
    expect(dead.terminated).toBe(true);
    expect(dead.pings).toBe(2);
    visit(); // forgotten: not terminated or pinged again
    expect(dead.pings).toBe(2);
    expect(alive.every((p) => !p.terminated && p.pings === 4)).toBe(true);
  });

  it('keeps the slots even as peers come and go', () => {
    const hb = new SpreadHeartbeat<Peer>(1000, 10);
    const peers = Array.from({ length: 100 }, () => new Peer(true));
    for (const p of peers) hb.add(p);
    for (const p of peers.slice(0, 50)) hb.delete(p); // the first 50 land in every slot in turn
    for (let i = 0; i < 50; i++) hb.add(new Peer(true));
    const perTick = Array.from({ length: 10 }, () => hb.tick());
    expect(perTick).toEqual(Array(10).fill(10));
  });
});
