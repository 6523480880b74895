/**
 * Test "devices": network namespaces joined to the host by a veth pair, with addresses in
 * 198.18.0.0/15 (RFC 2544 benchmarking space). Needs root and iproute2. Each host takes a /29
 * slot locked by an atomic mkdir, so parallel test files and runs never collide.
 */
import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const LOCKS = '/tmp/testbed-fileserver-netns-locks';
const SLOTS = 16384; // /29 slots in 198.18.0.0/15

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface TestHost extends AsyncDisposable {
  /** Name of the network namespace (the "device"). */
  readonly namespace: string;
  /** Host end of the veth pair. */
  readonly hostInterface: string;
  /** Device end of the veth pair (inside the namespace). */
  readonly deviceInterface: string;
  /** Host address on the link, e.g. 198.18.3.9. */
  readonly hostAddress: string;
  /** Device address on the link, e.g. 198.18.3.10. */
  readonly deviceAddress: string;
  /** The link's subnet in CIDR notation, e.g. 198.18.3.8/29. */
  readonly subnet: string;
  /** Runs a command inside the namespace; never rejects on a non-zero exit. */
  exec(
    command: string,
    args: readonly string[],
    options?: { timeoutMs?: number; input?: string },
  ): Promise<ExecResult>;
  /** Starts a long-running command inside the namespace. The caller ends it by PID. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
}

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function lockSlot(): Promise<number> {
  await mkdir(LOCKS, { recursive: true });
  for (let attempt = 0; attempt < 200; attempt++) {
    const slot = Math.floor(Math.random() * SLOTS);
    const dir = path.join(LOCKS, String(slot));
    try {
      await mkdir(dir);
      await writeFile(path.join(dir, 'pid'), String(process.pid));
      return slot;
    } catch {
      // Taken: reclaim it only if the process that took it is gone.
      const owner = Number(await readFile(path.join(dir, 'pid'), 'utf8').catch(() => ''));
      if (owner > 0 && !alive(owner)) await rm(dir, { recursive: true, force: true });
    }
  }
  throw new Error('no free 198.18.0.0/15 test slot after 200 attempts');
}

/** Creates a namespace "device" linked to the host. Dispose to remove it. */
export async function createTestHost(): Promise<TestHost> {
  const slot = await lockSlot();
  const base = ((198 << 24) | (18 << 16)) + slot * 8;
  const namespace = `tbfs${slot}`;
  const hostInterface = `tbh${slot}`;
  const deviceInterface = `tbd${slot}`;
  const hostAddress = ipv4(base + 1);
  const deviceAddress = ipv4(base + 2);
  const removeLink = async () => {
    await run('ip', ['link', 'del', hostInterface]).catch(() => {});
    await run('ip', ['netns', 'del', namespace]).catch(() => {});
  };
  const release = async () => {
    await removeLink();
    await rm(path.join(LOCKS, String(slot)), { recursive: true, force: true });
  };
  try {
    await removeLink(); // leftovers of a run that was killed while holding this slot
    await ip('netns', 'add', namespace);
    await ip('link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', deviceInterface);
    await ip('link', 'set', deviceInterface, 'netns', namespace);
    await ip('addr', 'add', `${hostAddress}/29`, 'dev', hostInterface);
    await ip('link', 'set', hostInterface, 'up');
    await ip('netns', 'exec', namespace, 'ip', 'addr', 'add', `${deviceAddress}/29`, 'dev', deviceInterface);
    await ip('netns', 'exec', namespace, 'ip', 'link', 'set', deviceInterface, 'up');
    await ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up');
  } catch (error) {
    await release();
    throw error;
  }
  return {
    namespace,
    hostInterface,
    deviceInterface,
    hostAddress,
    deviceAddress,
    subnet: `${ipv4(base)}/29`,
    exec(command, args, options = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', namespace, command, ...args],
          { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 << 20, encoding: 'utf8' },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
            resolve({ stdout, stderr, code });
          },
        );
        child.stdin?.on('error', () => {}); // the command may exit unread: its exit code tells
        if (options.input !== undefined) child.stdin?.end(options.input);
        else child.stdin?.end();
      });
    },
    spawn(command, args, options = {}) {
      return spawn('ip', ['netns', 'exec', namespace, command, ...args], options);
    },
    [Symbol.asyncDispose]: release,
  };
}
