/**
 * copy() as a client: 100 MiB downloads and uploads over http, ftp, sftp and scp against our
 * servers, next to the command-line clients people use against the same server in the same run
 * (curl for http and ftp; OpenSSH scp, through sshpass, with `-s` for sftp and `-O` for the
 * legacy scp protocol). Each copy runs in a process of its own on CPU 1, the server on CPU 0.
 * Figures are medians of `runs`: MB/s, and copy()'s peak resident memory, which stays flat
 * whatever the file size because copy() streams.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PASSWORD, startOurs, USER } from './lib/servers.js';
import { CLIENT_CPU, execFileAsync, has, MiB, median, pinned, ratio, round } from './lib/util.js';

const client = path.join(import.meta.dirname, 'copy', 'client.js');

async function makeFile(file, size) {
  const handle = await open(file, 'w');
  const chunk = randomBytes(MiB);
  for (let at = 0; at < size; at += MiB) await handle.write(chunk, 0, Math.min(MiB, size - at));
  await handle.close();
  await chmod(file, 0o644);
}

/** copy() in its own process: { seconds, maxRssMiB }. */
async function ours(server, from, to) {
  const [command, argv] = pinned(CLIENT_CPU, process.execPath, [
    client,
    JSON.stringify({ server, from, to }),
  ]);
  const { stdout } = await execFileAsync(command, argv, { timeout: 300_000 });
  return JSON.parse(stdout);
}

/** A command-line client's wall time in seconds. */
async function peer(command, args) {
  const [cmd, argv] = pinned(CLIENT_CPU, command, args);
  const started = performance.now();
  await execFileAsync(cmd, argv, { timeout: 300_000 });
  return (performance.now() - started) / 1000;
}

/** The command line of the peer client for one protocol and direction. */
function peerClient(protocol, port, direction, local, remote) {
  if (protocol === 'http' || protocol === 'ftp') {
    const url = `${protocol}://127.0.0.1:${port}/${remote}`;
    const io = direction === 'get' ? ['-o', local, url] : ['-T', local, url];
    return ['curl', ['-sS', '--fail', '-u', `${USER}:${PASSWORD}`, ...io]];
  }
  const far = `${USER}@127.0.0.1:${remote}`;
  const scp = [
    'scp',
    protocol === 'sftp' ? '-s' : '-O',
    '-q',
    '-P',
    String(port),
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    ...(direction === 'get' ? [far, local] : [local, far]),
  ];
  return ['sshpass', ['-p', PASSWORD, ...scp]];
}

export default async function run({ quick, log }) {
  const runs = quick ? 3 : 5;
  const size = (quick ? 20 : 100) * MiB;
  const table = `copy() against the usual clients, ${size / MiB} MiB to and from our servers (MB/s, median of ${runs})`;
  const rows = [];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-copy-'));
  try {
    const source = path.join(dir, 'source.bin');
    await makeFile(source, size);
    for (const protocol of ['http', 'ftp', 'sftp', 'scp']) {
      const needs = protocol === 'http' || protocol === 'ftp' ? ['curl'] : ['scp', 'sshpass'];
      const peerName =
        protocol === 'http' || protocol === 'ftp'
          ? 'curl'
          : `OpenSSH scp ${protocol === 'sftp' ? '-s' : '-O'}`;
      const root = path.join(dir, protocol);
      await execFileAsync('mkdir', ['-p', root]);
      await makeFile(path.join(root, 'big.bin'), size);
      const server = await startOurs(protocol === 'scp' ? 'sftp' : protocol, root);
      const entry = { protocol, address: '127.0.0.1', port: server.port, username: USER, password: PASSWORD };
      try {
        for (const direction of ['get', 'put']) {
          const local = path.join(dir, `${protocol}-${direction}.bin`);
          const [from, to] =
            direction === 'get'
              ? [`${protocol}://bench/big.bin`, local]
              : [source, `${protocol}://bench/put.bin`];
          log(`${protocol} ${direction}: copy()`);
          const measured = [];
          for (let i = 0; i < runs; i++) measured.push(await ours(entry, from, to));
          const oursMbps = size / median(measured.map((m) => m.seconds)) / 1e6;
          let peerMbps;
          if (needs.every(has)) {
            log(`${protocol} ${direction}: ${peerName}`);
            const [command, args] = peerClient(
              protocol,
              server.port,
              direction,
              direction === 'get' ? local : source,
              direction === 'get' ? 'big.bin' : 'put.bin',
            );
            const times = [];
            for (let i = 0; i < runs; i++) times.push(await peer(command, args));
            peerMbps = size / median(times) / 1e6;
          } else log(`${needs.join(' or ')} missing: no ${peerName} figures`);
          rows.push({
            table,
            protocol,
            operation: direction,
            'copy() MB/s': round(oursMbps),
            peer: peerName,
            'peer MB/s': peerMbps === undefined ? undefined : round(peerMbps),
            'MB/s ratio': ratio(oursMbps, peerMbps),
            'copy() peak RSS MiB': round(median(measured.map((m) => m.maxRssMiB))),
          });
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
