import type { UserRecord, UserStore } from './user-store.js';

/** Users in process memory (embedded mode). */
export class MemoryUserStore implements UserStore {
  private readonly byIdMap = new Map<string, UserRecord>();
  private readonly idByEmail = new Map<string, string>();

  async create(user: UserRecord): Promise<'created' | 'email_taken'> {
    if (this.idByEmail.has(user.email)) return 'email_taken';
    this.idByEmail.set(user.email, user.id);
    this.byIdMap.set(user.id, { ...user });
    return 'created';
  }

  async byEmail(email: string): Promise<UserRecord | null> {
    const id = this.idByEmail.get(email);
    return id ? this.byId(id) : null;
  }

  async byId(id: string): Promise<UserRecord | null> {
    const user = this.byIdMap.get(id);
    return user ? { ...user } : null;
  }
}
