/**
 * vitest integration: a `test` with file server fixtures, and the testbed that
 * `testbed-fileserver/vitest/global-setup` started for the whole run.
 *
 * ```ts
 * import { test } from 'testbed-fileserver/vitest';
 *
 * test('the device fetches its image', async ({ fileServer }) => {
 *   // fileServer: a running FileServer of its own, stopped when the test ends
 * });
 * ```
 *
 * vitest is an optional peer dependency: only this entry point needs it.
 * @module
 */
import { test as base, inject, type TestAPI } from 'vitest';
import { FileServerError } from '../errors.js';
import { FileServer, type FileServerOptions } from '../file-server.js';
import { Testbed } from '../testbed/testbed.js';
import { PROVIDED_TESTBED, type ProvidedTestbed } from './global-setup.js';

export {
  PROVIDED_TESTBED,
  type ProvidedTestbed,
  TESTBED_FILE_ENV,
  type TestbedGlobalSetupOptions,
  testbedGlobalSetup,
} from './global-setup.js';

/** What a {@link FileServerFixtures.startFileServer} call takes: FileServer options, testbed optional. */
export type FixtureServerOptions = FileServerOptions;

/** The fixtures of {@link test}. */
export interface FileServerFixtures {
  /**
   * The run's testbed as the global setup provided it (live entries of its dynamic servers), or
   * an empty one without it. Each test gets its own copy, so what one test registers never
   * leaks into another.
   */
  testbed: Testbed;
  /**
   * Options of the {@link FileServerFixtures.fileServer} fixture (default `{ protocol: 'http' }`).
   * Change them for a file or a `describe` with `test.override({ fileServerOptions: {...} })`.
   */
  fileServerOptions: FixtureServerOptions;
  /** A FileServer started with `fileServerOptions` on first use, stopped when the test ends. */
  fileServer: FileServer;
  /**
   * Starts another FileServer for this test, stopped (newest first) when the test ends. With a
   * `name` and no `testbed`, it registers in the test's {@link FileServerFixtures.testbed}.
   */
  startFileServer: (options: FixtureServerOptions) => Promise<FileServer>;
}

/**
 * The testbed the global setup provided, as a fresh {@link Testbed}. Throws ERR_INVALID_STATE
 * when the run has no `testbed-fileserver/vitest/global-setup`.
 */
export function injectTestbed(): Testbed {
  const provided = inject(PROVIDED_TESTBED) as ProvidedTestbed | undefined;
  if (!provided) {
    throw new FileServerError(
      'ERR_INVALID_STATE',
      'No testbed was provided: add testbed-fileserver/vitest/global-setup to globalSetup in the vitest config',
    );
  }
  return testbedOf(provided);
}

function testbedOf(provided: ProvidedTestbed): Testbed {
  return new Testbed({
    name: provided.testbed.name,
    servers: structuredClone(provided.testbed.servers),
    devices: structuredClone(provided.devices),
  });
}

/** `test` with the {@link FileServerFixtures}; use it in place of vitest's `test`, or extend it further. */
export const test: TestAPI<FileServerFixtures> = base.extend<FileServerFixtures>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads the fixtures a fixture needs from this pattern
  testbed: async ({}, use) => {
    const provided = inject(PROVIDED_TESTBED) as ProvidedTestbed | undefined;
    await use(provided ? testbedOf(provided) : new Testbed());
  },
  fileServerOptions: { protocol: 'http' },
  startFileServer: async ({ testbed }, use) => {
    const started: FileServer[] = [];
    await use(async (options) => {
      const register = options.name !== undefined && options.testbed === undefined;
      const server = new FileServer(register ? { ...options, testbed } : options);
      started.push(server);
      await server.start();
      return server;
    });
    const failures: unknown[] = [];
    for (const server of started.reverse())
      await server.stop().catch((error: unknown) => failures.push(error));
    if (failures.length > 0) throw failures[0];
  },
  fileServer: async ({ startFileServer, fileServerOptions }, use) => {
    await use(await startFileServer(fileServerOptions));
  },
});
