/**
 * Prerequisites of tests that need a tool from Debian or root. Outside CI a missing
 * prerequisite skips the suite with the reason in its name; in CI (`CI=true`) the suite fails.
 */
import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** True when `tool` is on PATH. */
export function hasTool(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const isRoot = process.getuid?.() === 0;

/** What is missing for a suite that needs `tools` (and root when `root` is set), or undefined. */
export function missing(tools: readonly string[], options: { root?: boolean } = {}): string | undefined {
  const reasons = tools.filter((t) => !hasTool(t)).map((t) => `${t} not installed`);
  if (options.root && !isRoot) reasons.push('needs root');
  return reasons.length > 0 ? reasons.join(', ') : undefined;
}

/**
 * `describe` for a suite with prerequisites: runs when they are met; otherwise skipped with the
 * reason (outside CI) or replaced by one failing test (in CI).
 */
export function describeWith(
  needs: { tools?: readonly string[]; root?: boolean },
  name: string,
  body: () => void,
): void {
  const reason = missing(needs.tools ?? [], needs);
  if (reason === undefined) {
    describe(name, body);
  } else if (inCI) {
    describe(name, () => {
      it('has its prerequisites', () => {
        throw new Error(`CI machine lacks a prerequisite: ${reason}`);
      });
    });
  } else {
    describe.skipIf(true)(`${name} [skipped: ${reason}]`, body);
  }
}
