/**
 * `npm audit` cannot reach the advisory service from the build machines, so the fixes for
 * ftp-srv's dependency advisories (docs/ftp.md, "Supply chain") are checked here against the
 * lockfile: the overrides must stay in force, and the fixed versions must stay installed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

interface LockPackage {
  name?: string;
  version: string;
}

const lock = JSON.parse(
  await readFile(path.resolve(import.meta.dirname, '../../package-lock.json'), 'utf8'),
) as {
  packages: Record<string, LockPackage>;
};
const pkg = JSON.parse(await readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  overrides: Record<string, Record<string, string>>;
};

/** Every installed copy of `name` (by install path), with its version. */
function installed(name: string): LockPackage[] {
  return Object.entries(lock.packages)
    .filter(([key]) => key.endsWith(`node_modules/${name}`))
    .map(([, value]) => value);
}

function atLeast(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

describe("ftp-srv's dependency tree", () => {
  it('pins ftp-srv exactly (the backend relies on its internals)', () => {
    expect(pkg.dependencies['ftp-srv']).toBe('4.6.3');
    expect(installed('ftp-srv').map((p) => p.version)).toEqual(['4.6.3']);
  });

  it('replaces ip@1 (CVE-2023-42282, CVE-2024-29415) with neoip', () => {
    expect(pkg.overrides['ftp-srv']?.ip).toBe('npm:neoip@^3.1.0');
    const copies = installed('ip');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy.name).toBe('neoip');
  });

  it.each([
    ['uuid', '11.1.1'], // GHSA-w5hq-g745-h8pq (CVE-2026-41907): bounds check backported to 11.1.1
    ['lodash', '4.18.0'], // CVE-2025-13465, CVE-2026-2950, CVE-2026-4800
    ['moment', '2.29.4'], // CVE-2022-24785, CVE-2022-31129
    ['minimatch', '3.1.3'], // CVE-2026-26996 (ReDoS)
    ['brace-expansion', '1.1.12'], // CVE-2025-5889
    ['yargs-parser', '18.1.2'], // CVE-2020-7608
    ['y18n', '4.0.1'], // CVE-2020-7774
    ['minimist', '1.2.6'], // CVE-2021-44906
  ])('%s is at least %s', (name, minimum) => {
    for (const copy of installed(name))
      expect(atLeast(copy.version, minimum), `${name}@${copy.version}`).toBe(true);
  });
});
