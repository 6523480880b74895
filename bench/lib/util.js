/**
 * Pieces the benchmarks share: statistics, CPU placement, processes, ports, memory.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);
export const MiB = 2 ** 20;
/** Where servers run and where clients run: two cores, one each (see docs/benchmarks.md). */
export const SERVER_CPU = 0;
export const CLIENT_CPU = 1;

/** True when `command` is on PATH (or an executable path). */
export function has(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const isRoot = process.getuid?.() === 0;

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const round = (n, digits = 1) =>
  n === undefined ? undefined : Math.round(n * 10 ** digits) / 10 ** digits;

/** ours / peer, two decimals; empty when either is missing. */
export const ratio = (ours, peer) => (ours && peer ? round(ours / peer, 2) : undefined);

/** `[command, args]` pinned to `cpu` with taskset when it is there. */
export function pinned(cpu, command, args) {
  return has('taskset') ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

/** A free TCP port on `address`. */
export async function freePort(address = '127.0.0.1') {
  const server = net.createServer().listen(0, address);
  await once(server, 'listening');
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** True once a TCP connection to address:port succeeds. */
export function connects(address, port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, address);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Spawns a server process and resolves once it answers on address:port (`probe`, default: a TCP
 * connection succeeds; polled every millisecond, at most `timeoutMs`), with the time that took.
 */
export async function spawnUntilListening(
  command,
  args,
  { address = '127.0.0.1', port, probe = connects, timeoutMs = 10_000 },
) {
  const started = performance.now();
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  while (!(await probe(address, port))) {
    if (child.exitCode !== null)
      throw new Error(`${command} ${args.join(' ')} exited with ${child.exitCode}: ${stderr.trim()}`);
    if (performance.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(
        `${command} did not answer on ${address}:${port} within ${timeoutMs} ms: ${stderr.trim()}`,
      );
    }
    await delay(1);
  }
  return { child, readyMs: performance.now() - started };
}

/** True once a TFTP server on address:port answers a read request (with anything, even an error). */
export function tftpAnswers(address, port) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const done = (answer) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), 20);
    socket.on('message', () => done(true));
    socket.on('error', () => done(false));
    socket.send(Buffer.from('\0\x01.probe\0octet\0', 'latin1'), port, address);
  });
}

/** A UDP port that is free now (TFTP servers get one picked for them). */
export async function freeUdpPort(address = '127.0.0.1') {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, address);
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** Sends SIGTERM to the process by PID and resolves with the time it took to exit (SIGKILL after 10 s). */
export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return 0;
  const exited = once(child, 'exit');
  const started = performance.now();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
  return performance.now() - started;
}

/** Live descendants of each process: ppid → pids. */
async function processTree() {
  const children = new Map();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  return children;
}

/** Sums `measure(pid)` over a process and its live descendants. */
async function overTree(pid, measure) {
  const children = await processTree();
  let total = 0;
  const visit = async (p) => {
    total += await measure(p).catch(() => 0);
    for (const child of children.get(p) ?? []) await visit(child);
  };
  await visit(pid);
  return total;
}

/** Resident memory (VmRSS) of a process and its descendants (nginx's worker, ...), in MiB. */
export async function rssMiB(pid) {
  const kib = await overTree(pid, async (p) => {
    const status = await readFile(`/proc/${p}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  });
  return kib / 1024;
}

const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
const CPUACCT = '/sys/fs/cgroup/cpuacct';
/** Server pid → its cpuacct cgroup, when it has one. */
const groups = new Map();

/**
 * Puts a server process and its descendants into a cpuacct cgroup of their own (root and cgroup
 * v1 cpuacct needed), so that cpuSeconds() counts every process it ever forks, including those
 * nobody reaps (tftpd-hpa ignores SIGCHLD, so its per-transfer processes never show in its own
 * times). Without a cgroup, cpuSeconds() sums the live process tree and reaped children.
 */
export async function accountCpu(pid) {
  if (!isRoot || !existsSync(path.join(CPUACCT, 'cgroup.procs'))) return;
  const dir = path.join(CPUACCT, `tbfs-bench-${pid}`);
  await mkdir(dir, { recursive: true });
  for (const p of await treePids(pid))
    await writeFile(path.join(dir, 'cgroup.procs'), String(p)).catch(() => {});
  groups.set(pid, dir);
}

/** Removes the cgroup of an ended server, once its last process has gone (2 s at most). */
export async function releaseCpu(pid) {
  const dir = groups.get(pid);
  if (!dir) return;
  groups.delete(pid);
  for (let i = 0; i < 200; i++) {
    if (
      await rmdir(dir).then(
        () => true,
        () => false,
      )
    )
      return;
    await delay(10);
  }
}

async function treePids(pid) {
  const children = await processTree();
  const out = [];
  const visit = (p) => {
    out.push(p);
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return out;
}

/** CPU seconds (user + system) a server has used so far, with every process it forked. */
export async function cpuSeconds(pid) {
  const group = groups.get(pid);
  if (group) return Number(await readFile(path.join(group, 'cpuacct.usage'), 'utf8')) / 1e9;
  return overTree(pid, async (p) => {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8');
    const [utime, stime, cutime, cstime] = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .slice(11, 15)
      .map(Number);
    return (utime + stime + cutime + cstime) / ticksPerSecond;
  });
}
