/**
 * Run Acme: `npm run example:acme` (see examples/acme/README.md). Settings: src/config.ts.
 */
import { loadAcmeConfig } from './config.js';
import { startAcme } from './app.js';

try {
  const config = loadAcmeConfig();
  const acme = await startAcme(config);
  if (acme.db.countUsers() === 0) {
    // A fresh database and no ACME_SEED_USERS: one user to try it with.
    const ana = await acme.db.addUser({ login: 'ana', password: 'ana-password', displayName: 'Ana Lima' });
    console.log(`acme: added user ${ana.login} / ana-password (${ana.id})`);
  }
  if (config.seedUsers.length) console.log(`acme: users ${config.seedUsers.map((u) => u.login).join(', ')} (from ACME_SEED_USERS)`);
  console.log(`acme listening on ${acme.url} (Handoff at ${config.handoffUrl}, database ${config.dbPath})`);
  const stop = () => void acme.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (err) {
  console.error(err instanceof Error && err.name === 'AcmeConfigError' ? `acme: ${err.message}` : err);
  process.exit(1);
}
