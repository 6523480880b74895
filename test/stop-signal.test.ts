/**
 * stop({ signal }): aborting the signal while stop() waits for running transfers ends the grace
 * period at once (the CLI's second Ctrl-C relies on it).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileServer } from '../src/file-server.js';
import type { TransferEvent } from '../src/transfer.js';
import { stalledDownload } from './cli/cli.js';
import { tmpDir } from './helpers/tmp.js';

describe('stop() with a signal', () => {
  it('aborting during the grace period aborts the running transfers instead of waiting', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'big.bin'), Buffer.alloc(32 << 20));
    const server = await FileServer.start({ protocol: 'http', address: '127.0.0.1', root: dir.path });
    const { url, username, password } = server.info;
    const events: TransferEvent[] = [];
    server.on('transfer', (event) => events.push(event));
    const device = await stalledDownload(`${url}big.bin`, username!, password!);

    const force = new AbortController();
    // Ten minutes of grace: only the abort can end this stop within the test's timeout.
    const stopping = server.stop({ graceMs: 600_000, signal: force.signal });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.state).toBe('stopping');
    force.abort();
    await stopping;
    expect(server.state).toBe('stopped');
    expect(events).toMatchObject([{ path: 'big.bin', ok: false }]);
    expect(await device.drain()).toBe(false);
  });
});
