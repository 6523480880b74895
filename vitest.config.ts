import path from 'node:path';
import { defineConfig } from 'vitest/config';

const nodeMajor = Number(process.versions.node.split('.')[0]);

export default defineConfig({
  // Node 24 parses `await using` natively: keep it, so CI's second run exercises the real thing.
  // Node 20 cannot, so there the syntax is lowered.
  oxc: { target: nodeMajor >= 24 ? 'esnext' : 'node20' },
  // Examples import the package by its name, exactly as users write them.
  resolve: {
    alias: [
      { find: /^testbed-fileserver$/, replacement: path.resolve(import.meta.dirname, 'src/index.ts') },
      {
        find: /^testbed-fileserver\/vitest$/,
        replacement: path.resolve(import.meta.dirname, 'src/vitest/index.ts'),
      },
      {
        find: /^testbed-fileserver\/vitest\/global-setup$/,
        replacement: path.resolve(import.meta.dirname, 'src/vitest/global-setup.ts'),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // Two cores: more workers only add scheduling noise to socket tests.
    maxWorkers: 2,
  },
});
