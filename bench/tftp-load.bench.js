/**
 * TFTP under load and per byte, beside tftpd-hpa and atftpd (tftp.bench.js has the throughput
 * matrix by client, block and window size):
 *
 * 1. 100, 500 and 1000 concurrent 1 MiB downloads from one load generator process (our client,
 *    blksize 1468, windowsize 16), against our engine with its session limits raised to 4096
 *    (the FileServer default allows 512 per peer address) and the peers.
 * 2. 100 MiB downloads and uploads with curl (blksize 1468, window 1; curl has no windowsize)
 *    and with tftp-hpa (512-byte blocks; uploads only): MB/s and the server's CPU seconds per
 *    100 MiB. Our server is the CLI's `serve tftp --writable`, which writes uploads to a temporary
 *    file and renames it, as the peers write theirs.
 *
 * Servers on CPU 0, clients on CPU 1; medians of `runs`; peers missing from this machine leave
 * their cells empty.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ATFTPD, serverHandle, startAtftpd, startOurs, startTftpdHpa } from './lib/servers.js';
import {
  CLIENT_CPU,
  cpuSeconds,
  execFileAsync,
  has,
  MiB,
  median,
  pinned,
  ratio,
  round,
  SERVER_CPU,
} from './lib/util.js';

const here = import.meta.dirname;

async function makeFile(file, size) {
  const handle = await open(file, 'w');
  const chunk = randomBytes(MiB);
  for (let at = 0; at < size; at += MiB) await handle.write(chunk, 0, Math.min(MiB, size - at));
  await handle.close();
  await chmod(file, 0o644);
}

/** Our engine alone with raised session limits (bench/tftp/serve.js), as tftp.bench.js runs it. */
async function startEngine(root) {
  const [command, argv] = pinned(SERVER_CPU, process.execPath, [
    path.join(here, 'tftp', 'serve.js'),
    root,
    '127.0.0.1',
  ]);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: child.stdout }), 'line');
  return serverHandle(child, JSON.parse(line).port, undefined);
}

const peers = () => [
  ...(has('in.tftpd') ? [['tftpd-hpa', startTftpdHpa]] : []),
  ...(has(ATFTPD) ? [['atftpd', startAtftpd]] : []),
];

/** One client transfer, timed around the process; resolves with seconds. */
async function transfer(client, direction, port, file) {
  const url = `tftp://127.0.0.1:${port}/${path.basename(file)}`;
  const args = {
    curl:
      direction === 'get'
        ? ['curl', ['-sS', '--fail', '--tftp-blksize', '1468', '-o', '/dev/null', url]]
        : ['curl', ['-sS', '--fail', '--tftp-blksize', '1468', '-T', file, url]],
    'tftp-hpa': ['tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', file, path.basename(file)]],
  }[client];
  const [command, argv] = pinned(CLIENT_CPU, ...args);
  const started = performance.now();
  await execFileAsync(command, argv, { timeout: 600_000, cwd: path.dirname(file) });
  return (performance.now() - started) / 1000;
}

export default async function run({ quick, log }) {
  const runs = quick ? 3 : 5;
  const rows = [];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-tftp-load-'));
  try {
    await chmod(dir, 0o755);
    const serveRoot = path.join(dir, 'serve');
    await execFileAsync('mkdir', ['-p', serveRoot]);
    await chmod(serveRoot, 0o777);
    await makeFile(path.join(serveRoot, 'one.bin'), MiB);
    for (const [name] of [['ours'], ...peers()]) log(`server: ${name}`);
    if (!has(ATFTPD)) log(`atftpd not found at ${ATFTPD}: its cells stay empty`);

    // 1. Concurrent downloads.
    for (const count of quick ? [100, 200] : [100, 500, 1000]) {
      const table = `TFTP load: ${count} concurrent 1 MiB downloads from one process (our client, blksize 1468, windowsize 16; median of ${runs})`;
      const results = {};
      for (const [name, start] of [['ours', startEngine], ...peers()]) {
        const server = await start(serveRoot);
        try {
          const samples = [];
          for (let i = 0; i < runs; i++) {
            const [command, argv] = pinned(CLIENT_CPU, process.execPath, [
              path.join(here, 'tftp', 'client.js'),
              'get',
              '127.0.0.1',
              String(server.port),
              'one.bin',
              '1468',
              '16',
              String(count),
            ]);
            const cpu0 = await cpuSeconds(server.pid);
            const { stdout } = await execFileAsync(command, argv, { timeout: 600_000 });
            const report = JSON.parse(stdout.trim().split('\n').at(-1));
            samples.push({ ...report, cpu: (await cpuSeconds(server.pid)) - cpu0 });
          }
          // Rate from the bytes that arrived: failed transfers count for nothing.
          const seconds = median(samples.map((s) => s.ms / 1000));
          results[name] = {
            seconds: round(seconds, 2),
            'MB/s': round(median(samples.map((s) => s.bytes / s.ms / 1000))),
            'failed (worst run)': Math.max(...samples.map((s) => s.failed)),
            retransmits: median(samples.map((s) => s.retransmits)),
            'server CPU s': round(median(samples.map((s) => s.cpu)), 2),
          };
          log(`${count} concurrent, ${name}: ${JSON.stringify(results[name])}`);
        } finally {
          await server.stop();
        }
      }
      for (const [name, result] of Object.entries(results)) {
        rows.push({
          table,
          server: name,
          ...result,
          'MB/s ours/this': name === 'ours' ? undefined : ratio(results.ours['MB/s'], result['MB/s']),
        });
      }
    }

    // 2. 100 MiB per transfer: rate and server CPU.
    const size = (quick ? 20 : 100) * MiB;
    const table = `TFTP ${size / MiB} MiB transfers: MB/s and server CPU seconds per 100 MiB (median of ${runs})`;
    const cases = [
      ['curl', 'get'],
      ['curl', 'put'],
      ['tftp-hpa', 'put'],
    ].filter(([client]) => has(client === 'tftp-hpa' ? 'tftp' : client));
    const byCase = new Map(cases.map((c) => [c.join(' '), {}]));
    for (const [name, start] of [['ours', (root) => startOurs('tftp', root)], ...peers()]) {
      const root = path.join(dir, name);
      await execFileAsync('mkdir', ['-p', root]);
      await chmod(root, 0o777);
      await makeFile(path.join(root, 'big.bin'), size);
      const upload = path.join(dir, `upload-${name}.bin`);
      await makeFile(upload, size);
      const server = await start(root);
      try {
        for (const [client, direction] of cases) {
          log(`${size / MiB} MiB ${client} ${direction}, ${name}`);
          const times = [];
          const cpu0 = await cpuSeconds(server.pid);
          for (let i = 0; i < runs; i++)
            times.push(
              await transfer(
                client,
                direction,
                server.port,
                direction === 'get' ? path.join(root, 'big.bin') : upload,
              ),
            );
          const cpu = ((await cpuSeconds(server.pid)) - cpu0) / runs;
          byCase.get(`${client} ${direction}`)[name] = {
            mbps: round(size / median(times) / 1e6, 1),
            cpu: round(cpu * ((100 * MiB) / size), 2),
          };
        }
      } finally {
        await server.stop();
      }
    }
    for (const [key, results] of byCase) {
      const [client, direction] = key.split(' ');
      const row = { table, client, direction };
      for (const [name, r] of Object.entries(results)) {
        row[`${name} MB/s`] = r.mbps;
        row[`${name} CPU s`] = r.cpu;
      }
      for (const [name] of peers()) row[`MB/s ours/${name}`] = ratio(results.ours?.mbps, results[name]?.mbps);
      rows.push(row);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
