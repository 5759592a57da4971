/**
 * client-sdk/README.md stays true to the code: the examples it shows are the tested files, every
 * option's default, every error code and every state-change code is documented, and every option
 * carries a doc comment naming its default.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, ERRORS, SDK_ERRORS, SUBSCRIPTION_CODES, TRANSPORT_CODES } from '@handoff/client-sdk';

const SDK = fileURLToPath(new URL('../../client-sdk/', import.meta.url));
const README = readFileSync(`${SDK}README.md`, 'utf8');

/** How the README writes a default value. */
function formatted(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => `'${v}'`).join(', ')}]`;
  if (typeof value === 'string') return `'${value}'`;
  return String(value);
}

/** The README table row of `name` (first cell in backticks). */
function row(name: string): string | undefined {
  return README.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
}

describe('client-sdk/README.md', () => {
  it('shows every example file verbatim', () => {
    const files = readdirSync(`${SDK}examples`).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) expect(README, file).toContain(readFileSync(`${SDK}examples/${file}`, 'utf8'));
  });

  it('has an options row with the default of every option', () => {
    for (const [name, value] of Object.entries(DEFAULTS)) {
      expect(row(name), name).toBeDefined();
      expect(row(name), name).toContain(`\`${formatted(value)}\``);
    }
  });

  it('documents every SDK error code and every server error code', () => {
    for (const code of [...Object.keys(SDK_ERRORS), ...Object.keys(ERRORS)]) expect(row(code), code).toBeDefined();
  });

  it('names every transport and subscription state-change code', () => {
    for (const code of [...Object.values(TRANSPORT_CODES), ...Object.values(SUBSCRIPTION_CODES)]) expect(README).toContain(`\`${code}\``);
  });
});

describe('doc comments', () => {
  it('every option of HandoffOptions has a doc comment that names its default', () => {
    const source = readFileSync(`${SDK}src/options.ts`, 'utf8');
    const body = source.slice(source.indexOf('export interface HandoffOptions'), source.indexOf('/** The defaults'));
    const lines = body.split('\n');
    const props = lines.flatMap((line, i) => (/^\s{2}\w+\??:/.test(line) ? [i] : []));
    expect(props.length).toBeGreaterThanOrEqual(Object.keys(DEFAULTS).length);
    for (const i of props) {
      const name = lines[i].trim().split(/\??:/)[0];
      expect(lines[i - 1], name).toMatch(/\/\*\*.*\*\//);
      if (name !== 'url') expect(lines[i - 1], name).toMatch(/Default/);
    }
  });
});
