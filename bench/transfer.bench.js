/**
 * HTTP, HTTPS and FTP: 100 MiB downloads and uploads with curl, ours against nginx (HTTP and
 * HTTPS, both with an ECDSA P-256 certificate) and vsftpd (FTP), and the rate of small-file HTTP requests with wrk, ours against nginx. Every server runs
 * in its own process on CPU 0, every client on CPU 1, on loopback; figures are medians of
 * `runs` transfers, with the servers' CPU time, and ratios ours / peer from the same run.
 *
 * Our servers are the CLI's `serve` (what users run, and the library underneath). nginx serves
 * with sendfile and writes PUT bodies to a temporary file that it renames, as we do; both check
 * Basic auth. vsftpd logs in a throw-away system account (root needed; without root its column
 * stays empty).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PASSWORD, PEERS, startOurs, startPeer, USER } from './lib/servers.js';
import { CLIENT_CPU, cpuSeconds, execFileAsync, has, MiB, median, pinned, ratio, round } from './lib/util.js';

async function makeFile(file, size) {
  const handle = await open(file, 'w');
  const chunk = randomBytes(MiB);
  for (let at = 0; at < size; at += MiB) await handle.write(chunk, 0, Math.min(MiB, size - at));
  await handle.close();
  await chmod(file, 0o644);
}

/** One curl transfer; resolves with curl's own total time in seconds. */
async function curlTime(args) {
  const [command, argv] = pinned(CLIENT_CPU, 'curl', [
    '-sS',
    '--fail',
    '-o',
    '/dev/null',
    '-w',
    '%{time_total}',
    ...args,
  ]);
  const { stdout } = await execFileAsync(command, argv, { timeout: 300_000 });
  return Number(stdout);
}

/** Median MB/s of `runs` transfers and the server's CPU seconds per 100 MiB moved. */
async function measure(server, runs, size, transfer) {
  const times = [];
  const cpuBefore = await cpuSeconds(server.pid);
  for (let i = 0; i < runs; i++) times.push(await transfer(i));
  const cpu = (await cpuSeconds(server.pid)) - cpuBefore;
  return { mbps: round(size / median(times) / 1e6), cpu: round((cpu / runs) * ((100 * MiB) / size), 2) };
}

/** Requests per second wrk reaches (1 thread, 16 connections, keep-alive), median of `runs`. */
async function requestRate(url, runs, seconds) {
  const auth = `Authorization: Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const rates = [];
  for (let i = 0; i < runs; i++) {
    const [command, argv] = pinned(CLIENT_CPU, 'wrk', ['-t1', '-c16', `-d${seconds}s`, '-H', auth, url]);
    const { stdout } = await execFileAsync(command, argv, { timeout: (seconds + 30) * 1000 });
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
    if (non2xx) throw new Error(`wrk got ${non2xx[1]} error answers from ${url}`);
    rates.push(Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)[1]));
  }
  return Math.round(median(rates));
}

export default async function run({ quick, log }) {
  const runs = quick ? 3 : 5;
  const size = (quick ? 20 : 100) * MiB;
  const label = `${size / MiB} MiB`;
  const table = `HTTP, HTTPS and FTP with curl, ${label} (MB/s and server CPU seconds per 100 MiB, median of ${runs})`;
  const rows = [];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-transfer-'));
  try {
    await chmod(dir, 0o755);
    const source = path.join(dir, 'source.bin');
    await makeFile(source, size);
    for (const protocol of ['http', 'https', 'ftp']) {
      const peer = PEERS[protocol];
      if (!peer.available())
        log(`${peer.name} not available (installed, and root for vsftpd): its cells stay empty`);
      const results = {};
      for (const kind of ['ours', ...(peer.available() ? ['peer'] : [])]) {
        const root = path.join(dir, `${protocol}-${kind}`);
        await execFileAsync('mkdir', ['-p', root]);
        await makeFile(path.join(root, 'big.bin'), size);
        const server = kind === 'ours' ? await startOurs(protocol, root) : await startPeer(protocol, root);
        try {
          const user = server.username ?? USER;
          const base = `${protocol}://127.0.0.1:${server.port}`;
          // Throughput, not trust, is measured: both HTTPS servers' certificates are self-signed.
          const login = ['-u', `${user}:${PASSWORD}`, ...(protocol === 'https' ? ['--insecure'] : [])];
          log(`${protocol} ${kind === 'ours' ? 'ours' : peer.name}: get`);
          const get = await measure(server, runs, size, () => curlTime([...login, `${base}/big.bin`]));
          log(`${protocol} ${kind === 'ours' ? 'ours' : peer.name}: put`);
          const put = await measure(server, runs, size, () =>
            curlTime([...login, '-T', source, `${base}/put.bin`]),
          );
          results[kind] = { get, put };
        } finally {
          await server.stop();
        }
      }
      for (const operation of ['get', 'put']) {
        const ours = results.ours[operation];
        const other = results.peer?.[operation];
        rows.push({
          table,
          protocol,
          operation,
          'ours MB/s': ours.mbps,
          peer: peer.name,
          'peer MB/s': other?.mbps,
          'MB/s ratio': ratio(ours.mbps, other?.mbps),
          'ours CPU s': ours.cpu,
          'peer CPU s': other?.cpu,
        });
      }
    }

    if (!has('wrk')) log('wrk not installed: no request-rate figures');
    else {
      const seconds = quick ? 2 : 5;
      const root = path.join(dir, 'small');
      await execFileAsync('mkdir', ['-p', root]);
      await writeFile(path.join(root, 'small.bin'), randomBytes(1024));
      const rates = {};
      for (const kind of ['ours', ...(PEERS.http.available() ? ['peer'] : [])]) {
        const server = kind === 'ours' ? await startOurs('http', root) : await startPeer('http', root);
        try {
          log(`http ${kind}: wrk`);
          rates[kind] = await requestRate(`http://127.0.0.1:${server.port}/small.bin`, runs, seconds);
        } finally {
          await server.stop();
        }
      }
      rows.push({
        table: `HTTP small-file requests: 1 KiB GET, wrk 1 thread 16 connections ${seconds} s (requests/s, median of ${runs})`,
        protocol: 'http',
        'ours req/s': rates.ours,
        peer: PEERS.http.name,
        'peer req/s': rates.peer,
        ratio: ratio(rates.ours, rates.peer),
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
