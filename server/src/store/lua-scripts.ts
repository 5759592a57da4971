import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { FINAL_STATES } from '@handoff/protocol';

const sources = new Map<string, string>();

/**
 * Lua prepended to every script: `FINAL`, the set of final states (state → true), built from
 * protocol's FINAL_STATES, the one source of truth. It ends with `;` and no newline, so it shares
 * the file's first line and the line numbers in Redis's error messages stay those of the file.
 */
export const LUA_PRELUDE = `local FINAL = { ${[...FINAL_STATES].map((s) => `[${luaString(s)}] = true`).join(', ')} }; `;

/** The source of `server/lua/<name>.lua` after LUA_PRELUDE, read once per process (the path works from src/* and dist/*). */
export function luaScript(name: string): string {
  let source = sources.get(name);
  if (source === undefined) {
    source = LUA_PRELUDE + readFileSync(new URL(`../../lua/${name}.lua`, import.meta.url), 'utf8');
    sources.set(name, source);
  }
  return source;
}

/**
 * Register Lua files as commands on a connection: `{ handoffFlowCreate: ['flow-create', 3] }`
 * (command name → file name and number of KEYS). ioredis runs them with EVALSHA and falls back to
 * EVAL when Redis lacks the script (first use, restart, SCRIPT FLUSH); redefining is harmless.
 */
export function defineScripts<C>(redis: Redis, scripts: Record<keyof C & string, [file: string, numberOfKeys: number]>): Redis & C {
  for (const [command, [file, numberOfKeys]] of Object.entries(scripts) as Array<[string, [string, number]]>) {
    redis.defineCommand(command, { numberOfKeys, lua: luaScript(file) });
  }
  return redis as Redis & C;
}

/** A state name as a Lua string literal (names are plain identifiers; anything else is a bug). */
function luaString(name: string): string {
  if (!/^[a-z_]+$/.test(name)) throw new Error(`state name ${JSON.stringify(name)} cannot be written into Lua`);
  return `'${name}'`;
}
