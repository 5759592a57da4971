import { createHash, randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { hashPassword, verifyPassword } from './passwords.js';

/*
 * Acme's database (SQLite through node:sqlite, Node >= 22.5): its users, its browser sessions,
 * its token signing keys, and the Handoff assertion ids (jti) it has already accepted.
 * Handoff never sees any of it.
 */

/** An Acme user as the API shows it. */
export interface AcmeUser {
  /** Opaque, stable id: the `sub` of Acme's tokens and of Handoff's assertions. */
  id: string;
  login: string;
  displayName: string;
  avatarUrl: string | null;
}

/** A signing key row: private key (PKCS8 PEM) and public JWK; `current` signs, `previous` is only published. */
export interface KeyRow {
  kid: string;
  privatePem: string;
  publicJwk: string;
  state: 'current' | 'previous';
  createdAt: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  login TEXT NOT NULL UNIQUE COLLATE NOCASE,
  display_name TEXT NOT NULL,
  avatar_url TEXT,
  password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  id_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  method TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_keys (
  kid TEXT PRIMARY KEY,
  private_pem TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('current', 'previous')),
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_ids (
  id TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
`;

type Row = Record<string, unknown>;
const toUser = (r: Row): AcmeUser => ({
  id: String(r.id),
  login: String(r.login),
  displayName: String(r.display_name),
  avatarUrl: r.avatar_url === null ? null : String(r.avatar_url),
});
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Acme's data access: one SQLite file (or `:memory:`). */
export class AcmeDb {
  readonly db: DatabaseSync;

  /** Open (and create) the database at `path` (`:memory:` for a throwaway one). */
  constructor(path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;');
    this.db.exec(SCHEMA);
  }

  /** Add a user with a scrypt-hashed password; returns it. */
  async addUser(u: { login: string; password: string; displayName: string; avatarUrl?: string | null }): Promise<AcmeUser> {
    const id = `u_${randomBytes(9).toString('base64url')}`;
    const hash = await hashPassword(u.password);
    this.db
      .prepare('INSERT INTO users (id, login, display_name, avatar_url, password_hash) VALUES (?, ?, ?, ?, ?)')
      .run(id, u.login, u.displayName, u.avatarUrl ?? null, hash);
    return { id, login: u.login, displayName: u.displayName, avatarUrl: u.avatarUrl ?? null };
  }

  /** The user with this id, or null. */
  userById(id: string): AcmeUser | null {
    const row = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as Row | undefined;
    return row ? toUser(row) : null;
  }

  /** How many users there are. */
  countUsers(): number {
    return Number((this.db.prepare('SELECT count(*) AS n FROM users').get() as Row).n);
  }

  /** The user when `login` and `password` match, else null (same work either way). */
  async checkPassword(login: string, password: string): Promise<AcmeUser | null> {
    const row = this.db.prepare('SELECT * FROM users WHERE login = ?').get(login) as Row | undefined;
    const ok = await verifyPassword(password, row ? String(row.password_hash) : null);
    return ok && row ? toUser(row) : null;
  }

  /** Start a browser session: returns the cookie value (only its SHA-256 is stored). */
  createSession(userId: string, method: string, ttlSeconds: number): string {
    const id = randomBytes(32).toString('base64url');
    this.db.prepare('INSERT INTO sessions (id_hash, user_id, method, expires_at) VALUES (?, ?, ?, ?)').run(sha256(id), userId, method, nowSeconds() + ttlSeconds);
    return id;
  }

  /** The user and login method of a live session cookie, or null. */
  sessionUser(cookie: string): { user: AcmeUser; method: string } | null {
    const row = this.db
      .prepare('SELECT u.*, s.method FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?')
      .get(sha256(cookie), nowSeconds()) as Row | undefined;
    return row ? { user: toUser(row), method: String(row.method) } : null;
  }

  /** End a browser session. */
  deleteSession(cookie: string): void {
    this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(sha256(cookie));
  }

  /**
   * Remember a one-time id (an assertion's `jti`, a credentials request's `webhook-id`) until
   * `expiresAt` (epoch s): true if it was already there, i.e. a replay. One atomic INSERT, so two
   * requests racing with the same id cannot both pass.
   */
  seen(id: string, expiresAt: number): boolean {
    this.db.prepare('DELETE FROM seen_ids WHERE expires_at < ?').run(nowSeconds());
    return this.db.prepare('INSERT OR IGNORE INTO seen_ids (id, expires_at) VALUES (?, ?)').run(id, expiresAt).changes === 0;
  }

  /** Every signing key, newest first. */
  keys(): KeyRow[] {
    return (this.db.prepare('SELECT * FROM signing_keys ORDER BY created_at DESC, rowid DESC').all() as Row[]).map((r) => ({
      kid: String(r.kid),
      privatePem: String(r.private_pem),
      publicJwk: String(r.public_jwk),
      state: r.state === 'current' ? 'current' : 'previous',
      createdAt: Number(r.created_at),
    }));
  }

  /** Store a new current key; the old current one becomes `previous` (still published). */
  addCurrentKey(k: Omit<KeyRow, 'state' | 'createdAt'>): void {
    this.db.exec('BEGIN');
    try {
      this.db.prepare("UPDATE signing_keys SET state = 'previous' WHERE state = 'current'").run();
      this.db.prepare("INSERT INTO signing_keys (kid, private_pem, public_jwk, state, created_at) VALUES (?, ?, ?, 'current', ?)").run(k.kid, k.privatePem, k.publicJwk, Date.now());
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Delete every `previous` key: tokens signed with them stop verifying; returns their kids. */
  dropPreviousKeys(): string[] {
    const kids = this.keys().filter((k) => k.state === 'previous').map((k) => k.kid);
    this.db.prepare("DELETE FROM signing_keys WHERE state = 'previous'").run();
    return kids;
  }

  /** Close the database. */
  close(): void {
    this.db.close();
  }
}
