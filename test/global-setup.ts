/**
 * Builds the package once per test run into a private folder (inside node_modules/.cache so that
 * the built files resolve dependencies), for tests that run our code in child processes: the CLI,
 * and servers started under another user id. Tests read the folder with `inject('distDir')`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    distDir: string;
  }
}

export default async function setup(project: TestProject) {
  const root = path.resolve(import.meta.dirname, '..');
  const distDir = path.join(root, 'node_modules', '.cache', `tbfs-test-dist-${process.pid}`);
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = [
    '--outDir',
    distDir,
    '--declaration',
    'false',
    '--declarationMap',
    'false',
    '--sourceMap',
    'false',
  ];
  // tsc emits even when it reports type errors (exit code 2); the typecheck step reports those.
  await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json', ...flags], {
    cwd: root,
  }).catch((error: { code?: number; stdout?: string }) => {
    if (error.code !== 2) throw error;
    console.warn(`tsc reported type errors while building for tests:\n${error.stdout}`);
  });
  // The native send path, built at install into dist/native, goes beside the built files too.
  const addon = path.join(root, 'dist', 'native');
  if (existsSync(addon)) await cp(addon, path.join(distDir, 'native'), { recursive: true });
  project.provide('distDir', distDir);
  return () => rm(distDir, { recursive: true, force: true });
}
