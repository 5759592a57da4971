import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/src/config.js';

describe('configuration from the environment', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      redisUrl: null,
      qrTtlSeconds: 120,
      tombstoneSeconds: 60,
      bcryptCost: 12,
      logLevel: 'info',
      jwtSecretGenerated: true,
      seedDemoUser: true,
      allowedOrigins: [],
      fanout: 'sharded',
    });
    expect(c.jwtSecret.length).toBeGreaterThanOrEqual(32);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['QR_TTL_SECONDS', '0'],
    ['TOMBSTONE_SECONDS', '-5'],
    ['BCRYPT_COST', '3'],
    ['BCRYPT_COST', '1e1'],
    ['LOG_LEVEL', 'loud'],
    ['REDIS_URL', 'http://localhost:6379'],
    ['REDIS_URL', 'not a url'],
    ['ALLOWED_ORIGINS', 'https://ok.example,https://bad.example/path'],
    ['JWT_SECRET', 'too-short'],
    ['SEED_DEMO_USER', 'maybe'],
    ['FANOUT', 'adapter'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name}:`));
  });

  it('requires JWT_SECRET in production and seeds no demo user there', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/^JWT_SECRET: is required/);
    const c = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 's'.repeat(32) });
    expect(c).toMatchObject({ jwtSecretGenerated: false, seedDemoUser: false });
  });

  it('serves the demo pages by default outside production and not in production, unless DEMO_PAGES says so', () => {
    expect(loadConfig({}).demoPages).toBe(true);
    const prod = { NODE_ENV: 'production', JWT_SECRET: 's'.repeat(32) };
    expect(loadConfig(prod).demoPages).toBe(false);
    expect(loadConfig({ ...prod, DEMO_PAGES: 'true' }).demoPages).toBe(true);
    expect(loadConfig({ DEMO_PAGES: 'false' }).demoPages).toBe(false);
    expect(() => loadConfig({ DEMO_PAGES: 'perhaps' })).toThrow(/^DEMO_PAGES:/);
  });

  it('parses origins and Redis mode', () => {
    const c = loadConfig({ ALLOWED_ORIGINS: ' https://a.example , http://localhost:5173 ', REDIS_URL: 'redis://127.0.0.1:7000' });
    expect(c.allowedOrigins).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(c.redisUrl).toBe('redis://127.0.0.1:7000');
    expect(c.seedDemoUser).toBe(false);
  });
});
