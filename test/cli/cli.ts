/**
 * Runs the built CLI (dist/cli/main.js from the run's private build) as a child process.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { expect, inject } from 'vitest';

/** The built CLI entry point. */
export function cliPath(): string {
  return path.join(inject('distDir'), 'cli', 'main.js');
}

/** A Node binary any user can run (CI keeps its Node 24 in root's home). */
export const systemNode = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a CLI command to its end (killed by PID after `timeoutMs`). */
export async function runCli(
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number; node?: string } = {},
): Promise<CliResult> {
  const { timeoutMs = 30_000, node = process.execPath, ...spawnOptions } = options;
  const child = spawn(node, [cliPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
  return collect(child, timeoutMs);
}

/** Collects a child's output until it exits; SIGKILLs it by PID after `timeoutMs`. */
export async function collect(child: ChildProcess, timeoutMs: number): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** A long-running CLI command (serve, up) started with --json. */
export interface RunningCli extends AsyncDisposable {
  readonly child: ChildProcess;
  /** JSON events so far, in order. */
  readonly events: Array<Record<string, unknown>>;
  /** Resolves with the next event matching `filter` (already received ones count), or rejects after `timeoutMs`. */
  waitFor(
    filter: (event: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends `signal` to the child by PID and waits for it to exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<CliResult>;
}

/** Starts `args` (which should include --json) and waits until `listening` events for `servers` servers arrived. */
export async function startCli(
  args: readonly string[],
  options: { servers?: number; cwd?: string } = {},
): Promise<RunningCli> {
  const child = spawn(process.execPath, [cliPath(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const events: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    events.push(JSON.parse(line) as Record<string, unknown>);
    for (const wake of waiters) wake();
  });
  const exited = once(child, 'close');
  const waitFor: RunningCli['waitFor'] = (filter, timeoutMs = 15_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = events.find(filter);
        if (found) {
          done();
          resolve(found);
        } else if (child.exitCode !== null) {
          done();
          reject(new Error(`CLI exited with ${child.exitCode}: ${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no matching CLI event within ${timeoutMs} ms; events: ${JSON.stringify(events)}; stderr: ${stderr}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      void exited.then(check);
      check();
    });
  const stop: RunningCli['stop'] = async (signal = 'SIGINT', timeoutMs = 15_000) => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      const [code, exitSignal] = (await exited) as [number | null, NodeJS.Signals | null];
      return { code, signal: exitSignal, stdout: events.map((e) => JSON.stringify(e)).join('\n'), stderr };
    } finally {
      clearTimeout(timer);
    }
  };
  const running: RunningCli = {
    child,
    events,
    waitFor,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop('SIGKILL');
    },
  };
  try {
    const servers = options.servers ?? 1;
    await waitFor(() => events.filter((event) => event.event === 'listening').length >= servers);
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
  return running;
}

/** True when `port` on `address` can be bound again (the CLI released it). */
export async function portIsFree(port: number, address = '127.0.0.1'): Promise<boolean> {
  const server = net.createServer();
  try {
    server.listen(port, address);
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/**
 * A device that starts a download and then stops reading, so that the transfer runs until the
 * server cuts it. Resolves once the first bytes arrived. `drain()` reads the rest and resolves
 * with true when the whole file came, false when the server cut the connection.
 */
export async function stalledDownload(
  url: string,
  username: string,
  password: string,
): Promise<{ drain(): Promise<boolean> }> {
  const req = http.get(url, { auth: `${username}:${password}` });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  if (res.statusCode !== 200) throw new Error(`download answered ${res.statusCode}`);
  await once(res, 'data');
  res.pause();
  // A cut connection emits 'error' ("aborted") before 'close'; only the end matters here.
  res.on('error', () => {});
  const closed = new Promise((resolve) => res.on('close', resolve));
  return {
    async drain() {
      res.resume();
      await closed;
      return res.complete;
    },
  };
}

/** A long-running CLI command in text mode; `text()` is what it printed so far. */
export function startCliText(args: readonly string[]): {
  child: ChildProcess;
  text(): string;
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
} {
  const child = spawn(process.execPath, [cliPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const result = collect(child, 60_000);
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return {
    child,
    text: () => text,
    stop: async (signal = 'SIGINT') => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
      return result;
    },
  };
}

/** Stops a long-running CLI with Ctrl-C and expects exit status 0 (showing stderr if not). */
export async function expectCleanStop(cli: {
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
}): Promise<void> {
  const result = await cli.stop('SIGINT');
  expect(result.code, `exit ${result.code}, signal ${result.signal}, stderr: ${result.stderr}`).toBe(0);
}
