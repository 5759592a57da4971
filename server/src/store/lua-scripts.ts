import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

const sources = new Map<string, string>();

/** The source of `server/lua/<name>.lua`, read once per process (the path works from src/* and dist/*). */
export function luaScript(name: string): string {
  let source = sources.get(name);
  if (source === undefined) {
    source = readFileSync(new URL(`../../lua/${name}.lua`, import.meta.url), 'utf8');
    sources.set(name, source);
  }
  return source;
}

/**
 * Register Lua files as commands on a connection: `{ handoffFlowCreate: ['flow-create', 2] }`
 * (command name → file name and number of KEYS). ioredis runs them with EVALSHA and falls back to
 * EVAL when Redis lacks the script (first use, restart, SCRIPT FLUSH); redefining is harmless.
 */
export function defineScripts<C>(redis: Redis, scripts: Record<keyof C & string, [file: string, numberOfKeys: number]>): Redis & C {
  for (const [command, [file, numberOfKeys]] of Object.entries(scripts) as Array<[string, [string, number]]>) {
    redis.defineCommand(command, { numberOfKeys, lua: luaScript(file) });
  }
  return redis as Redis & C;
}
