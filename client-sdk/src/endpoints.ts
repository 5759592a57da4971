/**
 * The server URLs a client may use: one (a load balancer, or a single server) or a list of nodes.
 * Every request and socket attempt goes to `current`; `rotate` moves on to the next URL after a
 * failure there (a socket connect that failed, a network error, a server's shutdown hint), so a
 * client whose node died or is being redeployed reaches another one.
 */
export class Endpoints {
  private index = 0;

  constructor(readonly urls: readonly string[]) {
    if (urls.length === 0) throw new TypeError('Handoff: option url is required');
  }

  /** The URL in use. */
  get current(): string {
    return this.urls[this.index];
  }

  /**
   * `failed` did not work: use the next URL (wrapping around). A no-op with one URL, or when an
   * earlier failure already moved on from `failed` (many requests failing at once rotate once).
   */
  rotate(failed: string): void {
    if (this.urls.length > 1 && this.current === failed) this.index = (this.index + 1) % this.urls.length;
  }
}
