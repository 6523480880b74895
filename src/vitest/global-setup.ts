/**
 * A vitest `globalSetup` that starts the dynamic servers of a testbed file once for the whole
 * run and hands their entries to the tests: what pyATS's Easypy file server plugin does for a
 * job. Use it as is, taking the file from the config's `provide.testbedFile` or the
 * `TESTBED_FILESERVER_TESTBED` environment variable:
 *
 * ```ts
 * // vitest.config.ts
 * export default defineConfig({
 *   test: {
 *     globalSetup: ['testbed-fileserver/vitest/global-setup'],
 *     provide: { testbedFile: './testbed.yaml' },
 *   },
 * });
 * ```
 *
 * or build one with options: `export default testbedGlobalSetup({ file: 'lab.yaml' })`. Tests
 * read the entries with {@link vitest!injectTestbed} or the `testbed` fixture of
 * `testbed-fileserver/vitest`.
 * @module
 */
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { type StartDynamicServersOptions, startDynamicServers } from '../dynamic-servers.js';
import { FileServerError } from '../errors.js';
import { Testbed } from '../testbed/testbed.js';

/** Environment variable naming the testbed file when the config does not. */
export const TESTBED_FILE_ENV = 'TESTBED_FILESERVER_TESTBED';

/** The key under which the global setup provides the testbed to tests (`inject(PROVIDED_TESTBED)`). */
export const PROVIDED_TESTBED = 'testbed-fileserver';

/** What the global setup provides: the testbed with the running servers' live entries. */
export type ProvidedTestbed = ReturnType<Testbed['toJSON']> & {
  /** Absolute path of the testbed file. */
  readonly file: string;
};

declare module 'vitest' {
  export interface ProvidedContext {
    /** The testbed of `testbed-fileserver/vitest/global-setup`, live entries included. */
    'testbed-fileserver': ProvidedTestbed;
    /** The testbed file for `testbed-fileserver/vitest/global-setup` (from `test.provide`). */
    testbedFile: string;
  }
}

/** Options of {@link testbedGlobalSetup}. */
export interface TestbedGlobalSetupOptions extends Omit<StartDynamicServersOptions, 'signal'> {
  /**
   * The testbed file, relative to the project root. Default: `provide.testbedFile` of the vitest
   * config, else the `TESTBED_FILESERVER_TESTBED` environment variable.
   */
  file?: string;
}

/**
 * Builds a vitest global setup function: it loads the testbed file, starts every
 * `dynamic: true` server in it (stopping them all again if one fails), provides the testbed to
 * the tests, and stops the servers when the run ends.
 */
export function testbedGlobalSetup(
  options: TestbedGlobalSetupOptions = {},
): (project: TestProject) => Promise<() => Promise<void>> {
  return async (project) => {
    const { file: given, ...startOptions } = options;
    const file = given ?? project.getProvidedContext().testbedFile ?? process.env[TESTBED_FILE_ENV];
    if (!file) {
      throw new FileServerError(
        'ERR_INVALID_OPTIONS',
        `testbed-fileserver/vitest: no testbed file; set test.provide.testbedFile in the vitest config or ${TESTBED_FILE_ENV}`,
      );
    }
    const absolute = path.resolve(project.config.root, file);
    const testbed = await Testbed.load(absolute);
    const servers = await startDynamicServers(testbed, startOptions);
    project.provide(PROVIDED_TESTBED, { ...testbed.toJSON(), file: absolute });
    return () => servers.stop();
  };
}

/** The global setup with the file from the config or the environment. */
export default testbedGlobalSetup();
