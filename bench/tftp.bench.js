/**
 * TFTP: our server against tftpd-hpa and atftpd, with the clients people use (curl, tftp-hpa,
 * atftp, busybox) and ours, on loopback, in one run with the same CPU placement (server on CPU 0,
 * client on CPU 1: on two cores placement moves small-block figures more than the server does).
 * Figures are medians; ratios compare with the peer measured in the same run.
 *
 * Sections: window 1 downloads at blksize 512/1468/65464; RFC 7440 windows; our client against
 * our server; uploads (window 1 and windows, every server writing to disk); 500 concurrent 1 MiB
 * downloads; peak server memory for 100 MiB and 1 GiB; a windowed download at 3 % loss each way
 * between two network namespaces (root and nftables needed).
 *
 * `TFTP_BENCH=window1,windowed,uploads,concurrent,memory,loss` runs only the sections named.
 *
 * Peers: `in.tftpd` (tftpd-hpa) on PATH, atftpd at $ATFTPD or /opt/atftpd/usr/sbin/atftpd
 * (`apt-get download atftpd && dpkg -x atftpd_*.deb /opt/atftpd`). A missing peer or client
 * leaves its cells empty and is named in the log.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const here = import.meta.dirname;
const execFileAsync = promisify(execFile);
const ATFTPD = process.env.ATFTPD ?? '/opt/atftpd/usr/sbin/atftpd';
const MiB = 2 ** 20;

function has(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const round = (n, digits = 1) => (n === undefined ? undefined : Math.round(n * 10 ** digits) / 10 ** digits);
const ratio = (a, b) => (a && b ? round(a / b, 2) : undefined);

/** Wraps a command with CPU pinning and an optional network namespace. */
function placed(command, args, { cpu, netns } = {}) {
  let argv = [command, ...args];
  if (cpu !== undefined && has('taskset')) argv = ['taskset', '-c', String(cpu), ...argv];
  if (netns) argv = ['ip', 'netns', 'exec', netns, ...argv];
  return argv;
}

/** Starts a server; resolves with its port and a stop function. */
async function startServer(kind, root, { address = '127.0.0.1', cpu = 0, netns, write = false } = {}) {
  const user = os.userInfo().username;
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  let child;
  let port;
  if (kind === 'ours') {
    child = spawn(
      ...splitArgv(
        placed(
          process.execPath,
          [path.join(here, 'tftp', 'serve.js'), root, address, ...(write ? ['write'] : [])],
          { cpu, netns },
        ),
      ),
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const [line] = await once(createInterface({ input: child.stdout }), 'line');
    port = JSON.parse(line).port;
  } else {
    port = 20000 + Math.floor(Math.random() * 30000);
    const argv =
      kind === 'tftpd-hpa'
        ? ['in.tftpd', ['-L', '-c', '-u', user, '-s', root, '-a', `${address}:${port}`]]
        : [
            ATFTPD,
            [
              '--daemon',
              '--no-fork',
              '--maxthread',
              '1000',
              '--port',
              String(port),
              '--bind-address',
              address,
              '--user',
              `${user}.${group}`,
              '--logfile',
              '/dev/null',
              root,
            ],
          ];
    child = spawn(...splitArgv(placed(argv[0], argv[1], { cpu, netns })), { stdio: 'ignore' });
    await waitForServer(address, port, netns);
  }
  const exited = once(child, 'exit');
  return {
    port,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

const splitArgv = (argv) => [argv[0], argv.slice(1)];

/** Polls with tftp-hpa's client (any answer, even ERROR 1, means the server is up). */
async function waitForServer(address, port, netns) {
  for (let i = 0; i < 50; i++) {
    try {
      const [cmd, args] = splitArgv(
        placed('busybox', ['tftp', '-g', '-r', '.probe', '-l', '/dev/null', address, String(port)], {
          netns,
        }),
      );
      await execFileAsync(cmd, args, { timeout: 1000 });
      return;
    } catch (error) {
      if (/not found|File not found|error 1/i.test(String(error.stderr ?? error.message))) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no server answers on ${address}:${port}`);
}

/**
 * Runs one download (`op: 'get'`, into /dev/null) or upload (`op: 'put'`, `file` is then a local
 * path, stored as up-CLIENT.bin); resolves with seconds (wall time; ours: timed inside the client).
 */
async function transfer(
  client,
  {
    op = 'get',
    address = '127.0.0.1',
    port,
    file,
    blksize,
    windowsize = 1,
    cpu = 1,
    netns,
    timeoutMs = 600_000,
  },
) {
  const put = op === 'put';
  const remote = put ? `up-${client}.bin` : file;
  const url = `tftp://${address}:${port}/${remote}`;
  const commands = {
    curl: [
      'curl',
      [
        '-sS',
        ...(put ? ['-T', file] : ['-o', '/dev/null']),
        ...(blksize === 512 ? [] : ['--tftp-blksize', String(blksize)]),
        url,
      ],
    ],
    'tftp-hpa': [
      'tftp',
      [
        '-m',
        'binary',
        address,
        String(port),
        '-c',
        ...(put ? ['put', file, remote] : ['get', file, '/dev/null']),
      ],
    ],
    atftp: [
      'atftp',
      [
        ...(put ? ['-p', '-l', file, '-r', remote] : ['-g', '-r', file, '-l', '/dev/null']),
        ...(blksize === 512 ? [] : ['--option', `blksize ${blksize}`]),
        ...(windowsize === 1 ? [] : ['--option', `windowsize ${windowsize}`]),
        address,
        String(port),
      ],
    ],
    busybox: [
      'busybox',
      [
        'tftp',
        ...(put ? ['-p', '-l', file, '-r', remote] : ['-g', '-r', file, '-l', '/dev/null']),
        ...(blksize === 512 ? [] : ['-b', String(blksize)]),
        address,
        String(port),
      ],
    ],
    ours: [
      process.execPath,
      [
        path.join(here, 'tftp', 'client.js'),
        op,
        address,
        String(port),
        file,
        String(blksize),
        String(windowsize),
      ],
    ],
  };
  commands['ours-warm'] = [commands.ours[0], [...commands.ours[1], '1', 'warm']];
  const [command, args] = commands[client];
  const [cmd, argv] = splitArgv(placed(command, args, { cpu, netns }));
  const started = performance.now();
  const { stdout } = await execFileAsync(cmd, argv, { timeout: timeoutMs, maxBuffer: 1 << 20 });
  const wall = (performance.now() - started) / 1000;
  if (!client.startsWith('ours')) return wall;
  const report = JSON.parse(stdout.trim().split('\n').at(-1));
  if (report.failed > 0) throw new Error(`our client failed: ${report.firstFailure}`);
  return report.ms / 1000;
}

/**
 * Median MB/s per server of `runs` transfers, the servers taking turns run by run (so that load
 * drifting on a shared machine hits them alike). A server that fails once gets no figure (logged).
 */
async function measureServers(log, label, kinds, runs, size, options) {
  const times = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [kind, port] of kinds.map((k) => [k, options.ports[k]])) {
      if (!times[kind]) continue;
      try {
        times[kind].push(await transfer(options.client, { ...options, port }));
        await options.afterEach?.();
      } catch (error) {
        log(`${label} → ${kind}: ${String(error.message ?? error).split('\n')[0]}`);
        times[kind] = undefined;
      }
    }
  }
  return Object.fromEntries(
    kinds.map((k) => [k, times[k] ? round(size / median(times[k]) / 1e6) : undefined]),
  );
}

async function emptyFolder(dir) {
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true, force: true });
}

async function makeFile(dir, name, size) {
  const file = path.join(dir, name);
  const handle = await open(file, 'w');
  const chunk = randomBytes(MiB);
  for (let at = 0; at < size; at += MiB) await handle.write(chunk, 0, Math.min(MiB, size - at));
  await handle.close();
  await chmod(file, 0o644);
  return name;
}

async function peakRssMiB(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)[1]) / 1024);
}

const SECTIONS = new Set(
  (process.env.TFTP_BENCH ?? 'window1,windowed,uploads,concurrent,memory,loss').split(','),
);

export default async function run({ quick, log }) {
  const runs = quick ? 3 : 5;
  const rows = [];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-tftp-'));
  await chmod(dir, 0o755);
  const servers = ['ours', ...(has('in.tftpd') ? ['tftpd-hpa'] : []), ...(has(ATFTPD) ? ['atftpd'] : [])];
  for (const missing of ['in.tftpd', ATFTPD].filter((c) => !has(c)))
    log(`${missing} not installed: its column stays empty`);
  const clients = ['curl', 'tftp-hpa', 'atftp', 'busybox', 'ours'].filter(
    (c) => c === 'ours' || has({ 'tftp-hpa': 'tftp' }[c] ?? c),
  );
  // Small blocks are bound by round trips, not by size: smaller files give the same rate sooner.
  const sizes = quick
    ? { 512: 4 * MiB, 1468: 8 * MiB, 65464: 32 * MiB }
    : { 512: 16 * MiB, 1468: 32 * MiB, 65464: 100 * MiB };
  const files = {};
  for (const [blksize, size] of Object.entries(sizes))
    files[blksize] = await makeFile(dir, `data-${blksize}.bin`, size);
  const running = {};
  try {
    for (const kind of servers) running[kind] = await startServer(kind, dir);

    // 1. Window 1 (RFC 1350 lockstep plus blksize), every standard client.
    for (const blksize of SECTIONS.has('window1') ? [512, 1468, 65464] : []) {
      for (const client of clients) {
        if (client === 'tftp-hpa' && blksize !== 512) continue; // the tftp-hpa client has no blksize option
        const row = {
          table: `TFTP downloads, window 1 (MB/s, median of ${runs})`,
          client,
          blksize,
          size: `${sizes[blksize] / MiB} MiB`,
        };
        Object.assign(
          row,
          await measureServers(log, `${client} ${blksize}`, servers, runs, sizes[blksize], {
            client,
            ports: Object.fromEntries(servers.map((k) => [k, running[k].port])),
            file: files[blksize],
            blksize,
          }),
        );
        row['ours/tftpd-hpa'] = ratio(row.ours, row['tftpd-hpa']);
        row['ours/atftpd'] = ratio(row.ours, row.atftpd);
        rows.push(row);
        log(JSON.stringify(row));
      }
    }

    // 2. RFC 7440 windows: atftp (the one standard client with windowsize) and ours (a fresh
    // process, and one that has already made a transfer), ours vs atftpd.
    const windowedClients = clients.includes('ours') ? [...clients, 'ours-warm'] : clients;
    for (const client of windowedClients.filter((c) => SECTIONS.has('windowed') && /^(atftp|ours)/.test(c))) {
      for (const blksize of [1468, 65464]) {
        for (const windowsize of [16, 64]) {
          const row = {
            table: `TFTP downloads with windowsize (MB/s, median of ${runs})`,
            client,
            blksize,
            windowsize,
            size: `${sizes[blksize] / MiB} MiB`,
          };
          const windowed = servers.filter((k) => k !== 'tftpd-hpa');
          Object.assign(
            row,
            await measureServers(log, `${client} ${blksize}x${windowsize}`, windowed, runs, sizes[blksize], {
              client,
              ports: Object.fromEntries(windowed.map((k) => [k, running[k].port])),
              file: files[blksize],
              blksize,
              windowsize,
            }),
          );
          row['ours/atftpd'] = ratio(row.ours, row.atftpd);
          rows.push(row);
          log(JSON.stringify(row));
        }
      }
    }

    // 3. 500 concurrent 1 MiB downloads with our client, against each server.
    const small = await makeFile(dir, 'one-mib.bin', MiB);
    const concurrent = quick ? 200 : 500;
    for (const kind of SECTIONS.has('concurrent') ? servers : []) {
      const [cmd, argv] = splitArgv(
        placed(
          process.execPath,
          [
            path.join(here, 'tftp', 'client.js'),
            'get',
            '127.0.0.1',
            String(running[kind].port),
            small,
            '1468',
            '16',
            String(concurrent),
          ],
          { cpu: 1 },
        ),
      );
      try {
        const { stdout } = await execFileAsync(cmd, argv, { timeout: 600_000 });
        const report = JSON.parse(stdout.trim());
        rows.push({
          table: `${concurrent} concurrent 1 MiB downloads (our client, blksize 1468, windowsize 16)`,
          server: kind,
          transfers: concurrent,
          failed: report.failed,
          seconds: round(report.ms / 1000, 2),
          'MB/s': round(report.bytes / report.ms / 1000),
          retransmits: report.retransmits,
        });
        if (report.failed) log(`${kind}: first failure: ${report.firstFailure}`);
      } catch (error) {
        log(`concurrency against ${kind}: ${error.message}`);
      }
    }
  } finally {
    for (const server of Object.values(running)) await server.stop();
  }

  // 4. Uploads, every server writing into a folder on disk (ours as FileServer does: a temporary
  // file renamed when complete): window 1 with every standard client that can put, then windows.
  if (SECTIONS.has('uploads')) {
    const uploads = path.join(dir, 'uploads');
    await mkdir(uploads, { mode: 0o777 });
    await chmod(uploads, 0o777);
    const receiving = {};
    try {
      for (const kind of servers) receiving[kind] = await startServer(kind, uploads, { write: true });
      const cases = [
        ...[512, 1468, 65464].flatMap((blksize) =>
          clients
            .filter((c) => c !== 'tftp-hpa' || blksize === 512)
            .map((client) => ({ client, blksize, windowsize: 1, kinds: servers })),
        ),
        ...clients
          .filter((c) => c === 'atftp' || c === 'ours')
          .flatMap((client) =>
            [1468, 65464].flatMap((blksize) =>
              [16, 64].map((windowsize) => ({
                client,
                blksize,
                windowsize,
                kinds: servers.filter((k) => k !== 'tftpd-hpa'),
              })),
            ),
          ),
      ];
      for (const { client, blksize, windowsize, kinds } of cases) {
        const row = {
          table: `TFTP uploads${windowsize === 1 ? ', window 1' : ' with windowsize'} (MB/s, median of ${runs})`,
          client,
          blksize,
          ...(windowsize === 1 ? {} : { windowsize }),
          size: `${sizes[blksize] / MiB} MiB`,
        };
        Object.assign(
          row,
          await measureServers(log, `${client} put ${blksize}x${windowsize}`, kinds, runs, sizes[blksize], {
            op: 'put',
            // tftpd-hpa overwrites only world-writable files, and files it creates are not.
            afterEach: () => emptyFolder(uploads),
            client,
            ports: Object.fromEntries(kinds.map((k) => [k, receiving[k].port])),
            file: path.join(dir, files[blksize]),
            blksize,
            windowsize,
          }),
        );
        if (kinds.includes('tftpd-hpa')) row['ours/tftpd-hpa'] = ratio(row.ours, row['tftpd-hpa']);
        row['ours/atftpd'] = ratio(row.ours, row.atftpd);
        rows.push(row);
        log(JSON.stringify(row));
      }
    } finally {
      for (const server of Object.values(receiving)) await server.stop();
      await rm(uploads, { recursive: true, force: true });
    }
  }

  // 5. Memory: peak RSS of our server process serving 100 MiB, then a fresh one serving 1 GiB.
  const memoryCases = [
    ['100 MiB', 100 * MiB],
    ['1 GiB (sparse)', 2 ** 30],
  ];
  for (const [label, size] of SECTIONS.has('memory') ? memoryCases : []) {
    const name = `mem-${size}.bin`;
    const handle = await open(path.join(dir, name), 'w');
    await handle.truncate(size);
    await handle.close();
    const server = await startServer('ours', dir);
    try {
      await transfer('ours', { port: server.port, file: name, blksize: 65464, windowsize: 16 });
      rows.push({
        table: 'Peak RSS of our server process (one download, blksize 65464, windowsize 16)',
        file: label,
        'peak RSS MiB': await peakRssMiB(server.pid),
      });
    } finally {
      await server.stop();
      await rm(path.join(dir, name), { force: true });
    }
  }

  // 6. 3 % loss each way between two network namespaces.
  try {
    if (SECTIONS.has('loss')) rows.push(...(await lossScenario({ quick, log, dir })));
  } catch (error) {
    log(`loss scenario skipped: ${error.message}`);
  }
  await rm(dir, { recursive: true, force: true });
  return rows;
}

async function sh(...argv) {
  await execFileAsync(argv[0], argv.slice(1), { timeout: 20_000 });
}

async function lossScenario({ quick, log, dir }) {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  if (!has('nft')) throw new Error('needs nftables (nft)');
  const tag = `${process.pid % 10000}`;
  const [srv, cli] = [`tbfsb-s${tag}`, `tbfsb-c${tag}`];
  const [srvIf, cliIf] = [`tbbs${tag}`, `tbbc${tag}`];
  const [srvIp, cliIp] = ['198.19.255.1', '198.19.255.2'];
  const cleanup = async () => {
    for (const ns of [srv, cli]) await sh('ip', 'netns', 'del', ns).catch(() => {});
  };
  await cleanup();
  const rows = [];
  try {
    await sh('ip', 'netns', 'add', srv);
    await sh('ip', 'netns', 'add', cli);
    await sh('ip', 'link', 'add', srvIf, 'netns', srv, 'type', 'veth', 'peer', 'name', cliIf, 'netns', cli);
    for (const [ns, dev, ip] of [
      [srv, srvIf, srvIp],
      [cli, cliIf, cliIp],
    ]) {
      await sh('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/30`, 'dev', dev);
      await sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', dev, 'up');
      await sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      // Ingress drops: an output-hook drop would make sendto() fail with EPERM instead of losing the packet.
      const rules = `table netdev loss {\n  chain in {\n    type filter hook ingress device ${dev} priority 0;\n    meta l4proto udp numgen random mod 1000 < 30 drop;\n  }\n}\n`;
      const rulesFile = path.join(dir, `${ns}.nft`);
      await writeFile(rulesFile, rules);
      await sh('ip', 'netns', 'exec', ns, 'nft', '-f', rulesFile);
    }
    const size = 3 * 10 ** 6;
    const file = await makeFile(dir, 'loss.bin', size);
    // Ours is fast enough for medians; the peers take minutes per run (fixed timers), so one run each.
    const oursRuns = quick ? 1 : 5;
    const cases = [
      { server: 'ours', client: 'ours', blksize: 1468, windowsize: 16, runs: oursRuns },
      { server: 'ours', client: 'atftp', blksize: 1468, windowsize: 16, runs: oursRuns },
      { server: 'atftpd', client: 'atftp', blksize: 1468, windowsize: 16, runs: 1 },
      // tftpd-hpa has no windowsize: atftp asks for it and runs lockstep, as in the 175 s.
      ...(quick ? [] : [{ server: 'tftpd-hpa', client: 'atftp', blksize: 1468, windowsize: 16, runs: 1 }]),
      // curl asks for `timeout 6`: we start there and adapt; tftpd-hpa would wait 6 s per loss (minutes).
      { server: 'ours', client: 'curl', blksize: 1468, windowsize: 1, runs: oursRuns },
    ];
    const seconds = {};
    const table = '3 % loss each way between namespaces, 3 MB download (seconds; ours: median of the runs)';
    for (const { runs, ...c } of cases) {
      if (c.server === 'atftpd' && !has(ATFTPD)) continue;
      if (c.server === 'tftpd-hpa' && !has('in.tftpd')) continue;
      const server = await startServer(c.server, dir, { address: srvIp, netns: srv });
      const times = [];
      const failures = [];
      try {
        for (let i = 0; i < runs; i++) {
          try {
            times.push(
              await transfer(c.client, {
                ...c,
                address: srvIp,
                port: server.port,
                file,
                netns: cli,
                timeoutMs: quick ? 120_000 : 400_000,
              }),
            );
          } catch (error) {
            // A lost packet can make a client give up (atftp aborts on a repeated OACK): count it, go on.
            const reason = String(error.killed ? 'timed out' : error.stderr || error.message)
              .trim()
              .split('\n')
              .at(-1);
            failures.push(reason);
            log(`loss ${c.server}/${c.client}: ${reason}`);
          }
        }
      } finally {
        await server.stop();
      }
      if (times.length > 0) seconds[`${c.server}/${c.client}`] = median(times);
      rows.push({
        table,
        ...c,
        runs,
        seconds: times.length > 0 ? round(median(times), 2) : undefined,
        failed: failures.length,
        ...(failures.length > 0 ? { 'first failure': failures[0] } : {}),
      });
    }
    for (const row of rows) {
      if (row.server !== 'ours' || !row.seconds || row.client === 'curl') continue;
      const atftpd = seconds['atftpd/atftp'];
      const hpa = seconds['tftpd-hpa/atftp'];
      if (atftpd) row['atftpd/ours'] = round(atftpd / row.seconds, 1);
      if (hpa) row['tftpd-hpa/ours'] = round(hpa / row.seconds, 1);
    }
  } finally {
    await cleanup();
  }
  return rows;
}
