/**
 * Keeps the code in README.md and docs/*.md identical to code that tests run. A code block is
 * preceded by a marker naming its source:
 *
 *     <!-- include: test/examples/http.test.ts#serve -->
 *     ```ts
 *     ...the lines between `// #region serve` and `// #endregion serve` in that file...
 *     ```
 *
 * (`#region` may be left out to include a whole file, e.g. a YAML fixture.) Every ts/js block
 * must have a marker. `npm run docs:sync` rewrites the blocks from their sources.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '..');
const update = process.env.TBFS_UPDATE_DOCS === '1';
const marker = /^<!-- include: ([^#\s]+)(?:#([\w-]+))? -->\n```(\w*)\n([\s\S]*?)^```$/gm;
const codeFence = /^```(ts|typescript|js|javascript|mjs)\s*$/gm;

function dedent(lines: string[]): string {
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length);
  const cut = Math.min(...indents, Number.POSITIVE_INFINITY);
  return `${lines.map((l) => l.slice(Number.isFinite(cut) ? cut : 0)).join('\n')}\n`;
}

async function source(file: string, region: string | undefined): Promise<string> {
  const text = await readFile(path.join(repo, file), 'utf8');
  if (region === undefined) return text.endsWith('\n') ? text : `${text}\n`;
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `// #region ${region}`);
  const end = lines.findIndex((l, i) => i > start && l.trim() === `// #endregion ${region}`);
  if (start < 0 || end < 0) throw new Error(`${file} has no region ${region}`);
  return dedent(lines.slice(start + 1, end));
}

async function documents(): Promise<string[]> {
  const docs = (await readdir(path.join(repo, 'docs')))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

describe('code in the docs is code the tests run', async () => {
  for (const doc of await documents()) {
    it(doc, async () => {
      const file = path.join(repo, doc);
      const text = await readFile(file, 'utf8');
      let updated = text;
      const included = new Set<number>();
      for (const match of text.matchAll(marker)) {
        const [whole, src, region, lang, body] = match as unknown as [
          string,
          string,
          string | undefined,
          string,
          string,
        ];
        const expected = await source(src, region);
        const fence = whole.indexOf('```');
        included.add(match.index + fence);
        if (update)
          updated = updated.replace(whole, `${whole.slice(0, fence)}\`\`\`${lang}\n${expected}\`\`\``);
        else
          expect(body, `${doc}: block from ${src}#${region ?? ''} is stale (npm run docs:sync)`).toBe(
            expected,
          );
        expect(lang).not.toBe('');
      }
      const unmarked = [...text.matchAll(codeFence)].filter((m) => !included.has(m.index));
      expect(
        unmarked.map((m) => text.slice(0, m.index).split('\n').length),
        `${doc}: code blocks on these lines have no include marker`,
      ).toEqual([]);
      if (update && updated !== text) await writeFile(file, updated);
    });
  }
});
