/**
 * The repository's Markdown links lead somewhere: every relative link in README.md, docs/*.md and
 * client-sdk/README.md names a file that is in the repository (a link out of it, like the old
 * `../shared/contract.md`, is broken for every reader of the published repository).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FILES = ['README.md', 'client-sdk/README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

it.each(FILES)('every relative link in %s names a file in the repository', (file) => {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  const targets = [...text.matchAll(/\]\(([^)\s]+)\)|`(\.\.\/[^`\s]+\.md)`/g)].map((m) => m[1] ?? m[2]);
  const broken = targets
    .filter((t) => !/^[a-z]+:|^#|^\//i.test(t))
    .map((t) => t.split('#')[0])
    .filter((t) => {
      const target = join(ROOT, dirname(file), t);
      return relative(ROOT, target).startsWith('..') || !existsSync(target);
    });
  expect(broken).toEqual([]);
});
