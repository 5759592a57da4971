/**
 * Redis Cluster's hash slot of a key: CRC16-XMODEM of the key (or of its hash tag, the first
 * non-empty `{…}`) modulo 16384, as in the Redis Cluster specification. keys.ts uses it to pick
 * shards; ioredis's Cluster client computes the same to route commands.
 */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

/** CRC16-XMODEM (polynomial 0x1021, initial 0) of the UTF-8 bytes of `s`. */
export function crc16(s: string): number {
  let crc = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return crc16Bytes(Buffer.from(s, 'utf8'));
    crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ c) & 0xff];
  }
  return crc;
}

function crc16Bytes(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/** The hash slot (0–16383) Redis Cluster puts `key` in. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) & 16383;
  }
  return crc16(key) & 16383;
}
