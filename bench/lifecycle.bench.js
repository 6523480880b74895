/**
 * Start, stop and idle memory, per protocol, two ways:
 *
 * 1. In-process, as tests use the library: `FileServer.start()` until listening, `stop()` until
 *    every socket is released, and the resident and heap memory one more idle server adds
 *    (`lifecycle/in-process.js`, a fresh Node process per protocol, 20 servers).
 * 2. As a server process beside its peer: our CLI `serve` against nginx (http), vsftpd (ftp),
 *    OpenSSH's sshd (sftp) and tftpd-hpa (tftp), each spawned pinned to CPU 0 on a loopback
 *    high port: spawn until the port answers, SIGTERM until exit, and the idle resident memory of
 *    the process and its children. Ours carries Node's own start-up (about 40 ms and 40 MiB).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PEERS, startOurs, startPeer } from './lib/servers.js';
import { execFileAsync, median, ratio, round, rssMiB } from './lib/util.js';

const here = import.meta.dirname;

async function inProcess(protocol, count) {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--expose-gc', path.join(here, 'lifecycle', 'in-process.js'), protocol, String(count)],
    { timeout: 300_000 },
  );
  return JSON.parse(stdout);
}

/** Median ready ms, stop ms and idle MiB of `runs` starts of one server kind. */
async function asProcess(start, runs) {
  const ready = [];
  const stop = [];
  const memory = [];
  for (let i = 0; i < runs; i++) {
    const server = await start();
    await delay(300); // idle: let start-up garbage settle
    memory.push(await rssMiB(server.pid));
    ready.push(server.readyMs);
    stop.push(await server.stop());
  }
  return { ready: round(median(ready)), stop: round(median(stop)), memory: round(median(memory)) };
}

export default async function run({ quick, log }) {
  const runs = quick ? 3 : 5;
  const count = quick ? 5 : 20;
  const rows = [];
  for (const protocol of ['tftp', 'ftp', 'http', 'https', 'sftp', 'scp']) {
    log(`${protocol}: ${count} servers in one process`);
    const r = await inProcess(protocol, count);
    rows.push({
      table: `FileServer in one process: start() and stop() (ms, median of ${count}), memory per idle server (MiB)`,
      protocol: protocol === 'scp' ? 'scp (information only)' : protocol,
      'start ms': round(median(r.startMs), 2),
      'stop ms': round(median(r.stopMs), 2),
      'RSS MiB': round(r.rssMiB, 2),
      'heap MiB': round(r.heapMiB, 2),
    });
  }

  const root = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-lifecycle-'));
  try {
    for (const protocol of ['http', 'https', 'ftp', 'sftp', 'tftp']) {
      const peer = PEERS[protocol];
      log(`${protocol}: ours and ${peer.name} as processes`);
      const ours = await asProcess(() => startOurs(protocol, root), runs);
      const other = peer.available() ? await asProcess(() => startPeer(protocol, root), runs) : undefined;
      if (!other) log(`${peer.name} not available: its cells stay empty`);
      rows.push({
        table: `Server process: spawn until it answers, SIGTERM until exit (ms), idle memory (MiB); median of ${runs}`,
        protocol,
        peer: peer.name,
        'ours ready': ours.ready,
        'peer ready': other?.ready,
        'ready ratio': ratio(ours.ready, other?.ready),
        'ours stop': ours.stop,
        'peer stop': other?.stop,
        'stop ratio': ratio(ours.stop, other?.stop),
        'ours MiB': ours.memory,
        'peer MiB': other?.memory,
        'memory ratio': ratio(ours.memory, other?.memory),
      });
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  return rows;
}
