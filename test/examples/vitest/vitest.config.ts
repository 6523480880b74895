/**
 * The example project of docs/vitest.md: a vitest config that starts the dynamic servers of
 * testbed.yaml for the whole run. test/vitest.test.ts runs it as an installed package would.
 */
// #region config
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*.spec.ts'],
    // Starts every `dynamic: true` server of the testbed file once, stops them when the run ends.
    globalSetup: ['testbed-fileserver/vitest/global-setup'],
    provide: { testbedFile: './testbed.yaml' }, // or TESTBED_FILESERVER_TESTBED=... in the environment
  },
});
// #endregion config
