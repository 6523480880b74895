/**
 * Our TFTP client in its own process for the benchmark, timed from the request to the final ACK:
 *   node client.js get HOST PORT FILE BLKSIZE WINDOWSIZE [CONCURRENT] [warm]
 *   node client.js put HOST PORT LOCAL-FILE BLKSIZE WINDOWSIZE   (stored as up-ours.bin)
 * `warm`: one untimed download first, so that the figure is that of a running process (the SDK
 * in a test run) rather than one that has just started (compiling its code as it goes).
 * Prints `{"ms":..., "bytes":..., "ok":..., "failed":..., "retransmits":...}`.
 */
import { Writable } from 'node:stream';
import { TftpClient } from '../../dist/index.js';

const [op, host, port, file, blksize, windowsize, concurrent = '1', warm] = process.argv.slice(2);
if (op !== 'get' && op !== 'put') throw new Error(`unknown operation ${op}`);
const client = new TftpClient({
  host,
  port: Number(port),
  blksize: Number(blksize),
  windowsize: Number(windowsize),
});
const discard = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });
const transfer = () => (op === 'get' ? client.get(file, discard()) : client.put(file, 'up-ours.bin'));
if (warm === 'warm') await transfer();
const started = performance.now();
const results = await Promise.allSettled(Array.from({ length: Number(concurrent) }, transfer));
const ms = performance.now() - started;
const ok = results.filter((r) => r.status === 'fulfilled');
const failures = results
  .filter((r) => r.status === 'rejected')
  .map((r) => String(r.reason?.message ?? r.reason));
process.stdout.write(
  `${JSON.stringify({
    ms,
    bytes: ok.reduce((n, r) => n + r.value.bytes, 0),
    ok: ok.length,
    failed: failures.length,
    firstFailure: failures[0],
    retransmits: ok.reduce((n, r) => n + r.value.retransmits, 0),
  })}\n`,
);
process.exit(0);
