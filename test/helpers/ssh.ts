/**
 * Embedded SSH (sftp / scp) test fixtures: a FileServer on loopback serving the standard tree,
 * a known_hosts file pinned to its host keys, and runners for OpenSSH's scp, sftp and ssh with
 * password authentication through sshpass (the password travels in the environment, never on a
 * command line).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2, { type ClientChannel, type SFTPWrapper } from 'ssh2';
import { FileServer, type FileServerOptions } from '../../src/file-server.js';
import type { TransferEvent } from '../../src/transfer.js';
import { makeTree } from './ftp.js';
import { tmpDir } from './tmp.js';

export interface SshFixture extends AsyncDisposable {
  dir: string;
  root: string;
  server: FileServer;
  host: string;
  port: number;
  user: string;
  password: string;
  events: TransferEvent[];
  /** known_hosts pinned to the server's host keys. */
  knownHosts: string;
  /** Runs an OpenSSH tool (`scp`, `sftp`, `ssh`) with the password from sshpass and pinned keys. */
  openssh(
    tool: 'scp' | 'sftp' | 'ssh',
    args: string[],
    options?: { password?: string; knownHosts?: string },
  ): Promise<RunResult>;
  /** `user@host:` for scp targets. */
  remote(p: string): string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** known_hosts lines for a running server. */
export function knownHostsText(server: FileServer): string {
  const { address, port } = server.info;
  const hostKeys = server.info.hostKeys as string[];
  return hostKeys.map((key) => `[${address}]:${port} ${key}\n`).join('');
}

export async function sshFixture(options: Partial<FileServerOptions> = {}): Promise<SshFixture> {
  const tmp = await tmpDir('tbfs-ssh-');
  const root = await makeTree(tmp.path);
  const server = await FileServer.start({
    protocol: 'sftp',
    root,
    address: '127.0.0.1',
    ...options,
  } as FileServerOptions);
  const events: TransferEvent[] = [];
  server.on('transfer', (e) => events.push(e));
  const info = server.info;
  const knownHosts = path.join(tmp.path, 'known_hosts');
  await writeFile(knownHosts, knownHostsText(server));
  const user = info.username ?? '';
  const password = info.password ?? '';
  return {
    dir: tmp.path,
    root,
    server,
    host: info.address,
    port: info.port,
    user,
    password,
    events,
    knownHosts,
    remote: (p) => `${user}@${info.address}:${p}`,
    openssh(tool, args, o = {}) {
      const common = [
        '-o',
        `UserKnownHostsFile=${o.knownHosts ?? knownHosts}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'GlobalKnownHostsFile=/dev/null',
        '-o',
        'PubkeyAuthentication=no',
        '-o',
        'PreferredAuthentications=password,keyboard-interactive',
        '-o',
        'BatchMode=no',
        '-o',
        'ConnectTimeout=10',
        '-o',
        'LogLevel=ERROR',
        '-F',
        '/dev/null',
      ];
      const portFlag = tool === 'ssh' ? ['-p', String(info.port)] : ['-P', String(info.port)];
      return run('sshpass', ['-e', tool, ...portFlag, ...common, ...args], {
        SSHPASS: o.password ?? password,
      });
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

/** An ssh2 client connected to the fixture (for protocol-level tests). */
export async function sshClient(
  f: Pick<SshFixture, 'host' | 'port' | 'user' | 'password'>,
  options: { password?: string; tryKeyboard?: boolean } = {},
): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.on('keyboard-interactive', (_name, _instructions, _lang, _prompts, finish) =>
      finish([options.password ?? f.password]),
    );
    client.connect({
      host: f.host,
      port: f.port,
      username: f.user,
      ...(options.tryKeyboard ? { tryKeyboard: true } : { password: options.password ?? f.password }),
      readyTimeout: 10_000,
    });
  });
  client.on('error', () => {});
  return client;
}

export function sftpOf(client: ssh2.Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) =>
    client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))),
  );
}

export function execOf(client: ssh2.Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) =>
    client.exec(command, (error, stream) => (error ? reject(error) : resolve(stream))),
  );
}

/** Runs `command` on the server and collects its output and exit status. */
export function execAll(
  client: ssh2.Client,
  command: string,
  input?: Buffer,
): Promise<{ code: number | undefined; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) =>
    client.exec(command, (error, stream) => {
      if (error) return reject(error);
      // Listen at once: the exit status can arrive in the same read as the reply to exec, before
      // an awaiting caller would get to attach a listener.
      const out: Buffer[] = [];
      let stderr = '';
      let code: number | undefined;
      stream.on('data', (c: Buffer) => out.push(c));
      stream.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      stream.on('exit', (c: number) => (code = c));
      stream.on('close', () => resolve({ code, stdout: Buffer.concat(out), stderr }));
      stream.end(input);
    }),
  );
}
