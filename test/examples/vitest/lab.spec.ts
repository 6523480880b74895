/**
 * The tests of the vitest example project (docs/vitest.md), run by test/vitest.test.ts with the
 * example's own config: the run-wide server from testbed.yaml and per-test servers.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type FileServer, Testbed } from 'testbed-fileserver';
import { injectTestbed, test } from 'testbed-fileserver/vitest';
import { describe, expect } from 'vitest';

// #region dynamic
test('the run-wide server of testbed.yaml is in the testbed', async ({ testbed }) => {
  const images = testbed.server('images'); // started once by the global setup, with its live entry
  await writeFile(path.join(images.root!, 'ios.bin'), 'image');
  const auth = Buffer.from(`${images.username}:${images.password}`).toString('base64');
  const response = await fetch(`${images.url}ios.bin`, { headers: { authorization: `Basic ${auth}` } });
  expect(await response.text()).toBe('image');
});
// #endregion dynamic

// #region fixture
test('a server of its own, stopped when the test ends', async ({ fileServer, startFileServer, testbed }) => {
  expect(fileServer.state).toBe('running'); // started with fileServerOptions: http by default
  const uploads = await startFileServer({ protocol: 'ftp', name: 'uploads', address: '127.0.0.1' });
  expect(testbed.server('uploads').port).toBe(uploads.port); // registered in this test's testbed only
});

describe('over tftp', () => {
  test.override({ fileServerOptions: { protocol: 'tftp', address: '127.0.0.1' } });

  test('fileServerOptions changed for this describe', async ({ fileServer }) => {
    expect(fileServer.info.url).toMatch(/^tftp:\/\/127\.0\.0\.1:\d+\/$/);
  });
});
// #endregion fixture

// Checks of the example itself, not shown in the guide.
let kept: FileServer[] = [];

test('(check) a test starts servers', async ({ fileServer, startFileServer, testbed }) => {
  kept = [fileServer, await startFileServer({ protocol: 'tftp', name: 'boot', address: '127.0.0.1' })];
  expect(testbed.servers.has('boot')).toBe(true);
});

test('(check) they are stopped once it ended, and gone from the next testbed', ({ testbed }) => {
  expect(kept.map((server) => server.state)).toEqual(['stopped', 'stopped']);
  expect(testbed.servers.has('boot')).toBe(false);
  expect(injectTestbed()).toBeInstanceOf(Testbed);
  expect(injectTestbed().server('images').dynamic).toBe(true);
});
