/**
 * A global setup with options (docs/vitest.md): list this file in `globalSetup` instead of
 * 'testbed-fileserver/vitest/global-setup'. test/vitest.test.ts runs it.
 */
// #region setup
import { testbedGlobalSetup } from 'testbed-fileserver/vitest/global-setup';

export default testbedGlobalSetup({
  file: 'testbed.yaml', // relative to the project root
  defaultProtocol: 'tftp', // for dynamic entries that name no protocol
  defaults: { stopGraceMs: 5000 }, // FileServer options for every server, under the entry's own
});
// #endregion setup
