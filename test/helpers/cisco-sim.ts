/**
 * A simulated Cisco CLI (IOS-XE or NX-OS) on an ssh2 server, for testing the copy builders
 * over a real SSH session: a pty-like line discipline (echo, no echo at password prompts,
 * single-key `[confirm]`s, Ctrl-C), `enable`, `terminal ...`, configuration mode with a
 * running-config, and `copy` with the platforms' dialogs and error messages. The copies are
 * real: the "device" fetches from and sends to the URL's server with real clients, into a
 * folder on this host that plays `bootflash:`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2, { type ParsedKey, type ServerChannel } from 'ssh2';
import { loadTransport } from '../../src/copy/copy.js';
import { sshFingerprint } from '../../src/copy/ssh-connect.js';
import type { ResolvedUrl } from '../../src/copy/url.js';
import { type Protocol, STANDARD_PORTS } from '../../src/transfer.js';
import { abortSignalAfter } from '../../src/util/abort.js';

const { Server, utils } = ssh2;

export interface SimOptions {
  os: 'iosxe' | 'nxos';
  hostname?: string;
  /** Start in user mode (`R1>`) and require `enable` with this secret. */
  enableSecret?: string;
  /** IOS-XE: ask "Erase bootflash: before copying? [confirm]" (the right answer is n). */
  askErase?: boolean;
  /** Print success without transferring anything (a device that lies). */
  lie?: boolean;
  /** How long the device's own clients wait before "Timed out" (default 5000 ms). */
  clientTimeoutMs?: number;
  /**
   * How users log in (default `password`): `keyboard-interactive` only, as some devices do, or
   * `publickey` with this public key (OpenSSH format).
   */
  login?: 'password' | 'keyboard-interactive' | { publicKey: string };
}

export interface SimulatedDevice extends AsyncDisposable {
  readonly address: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly fingerprint: string;
  /** The folder that plays `bootflash:`. */
  readonly flash: string;
  /** Every command line received at the prompt. */
  readonly commands: string[];
  /** Every answer given at a dialog prompt, by prompt name. */
  readonly answers: Array<{ prompt: string; answer: string }>;
  /** The running configuration (lines set in configuration mode). */
  readonly config: string[];
  /** Certificates (PEM) https trusts, as trustpoints hold them (`crypto pki authenticate`). */
  readonly trustpoints: string[];
  /** Ends every SSH connection (the listener stays), as a device reload would. */
  dropConnections(): void;
}

export async function startSimulatedDevice(options: SimOptions): Promise<SimulatedDevice> {
  const username = 'admin';
  const password = 'Sim-Pass-1';
  const hostKey = usableKeyPair();
  const flash = await mkdtemp(path.join(os.tmpdir(), 'tbfs-flash-'));
  const commands: string[] = [];
  const answers: Array<{ prompt: string; answer: string }> = [];
  const config: string[] = [];
  const trustpoints: string[] = [];
  const connections = new Set<{ end(): void }>();
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    connections.add(client);
    client.on('close', () => connections.delete(client));
    client.on('error', () => {});
    const login = options.login ?? 'password';
    const allowed =
      login === 'password' ? 'password' : login === 'keyboard-interactive' ? login : 'publickey';
    client.on('authentication', (ctx) => {
      if (ctx.username !== username || ctx.method !== allowed) return ctx.reject([allowed]);
      if (ctx.method === 'password') return ctx.password === password ? ctx.accept() : ctx.reject([allowed]);
      if (ctx.method === 'keyboard-interactive') {
        return ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers) =>
          answers[0] === password ? ctx.accept() : ctx.reject([allowed]),
        );
      }
      if (ctx.method === 'publickey' && typeof login === 'object') {
        const expected = utils.parseKey(login.publicKey) as ParsedKey;
        const same = ctx.key.algo === expected.type && ctx.key.data.equals(expected.getPublicSSH());
        if (!same) return ctx.reject([allowed]);
        // Without a signature the client only asks whether the key would do.
        if (!ctx.signature) return ctx.accept();
        return expected.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true
          ? ctx.accept()
          : ctx.reject([allowed]);
      }
      ctx.reject([allowed]);
    });
    client.on('session', (accept) => {
      const session = accept();
      session.on('pty', (ok) => ok?.());
      session.on('shell', (acceptShell) => {
        const channel = acceptShell();
        const cli = new Cli(channel, { ...options, flash, commands, answers, config, trustpoints });
        cli.run().catch(() => channel.close());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const fingerprint = sshFingerprint((utils.parseKey(hostKey.public) as ParsedKey).getPublicSSH());
  return {
    address: '127.0.0.1',
    port,
    username,
    password,
    fingerprint,
    flash,
    commands,
    answers,
    config,
    trustpoints,
    dropConnections() {
      for (const c of connections) c.end();
    },
    async [Symbol.asyncDispose]() {
      for (const c of connections) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(flash, { recursive: true, force: true });
    },
  };
}

/**
 * ssh2 writes about 1 in 256 Ed25519 keys in a form it cannot read back (it strips a leading
 * zero byte of the public key: mscdex/ssh2#1390, #1513); draw again until it can.
 */
export function usableKeyPair(): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519');
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error))
      return pair;
  }
  throw new Error('no usable Ed25519 key in 20 draws');
}

class Interrupted extends Error {}

interface CliState extends SimOptions {
  flash: string;
  commands: string[];
  answers: Array<{ prompt: string; answer: string }>;
  config: string[];
  trustpoints: string[];
}

class Cli {
  readonly #channel: ServerChannel;
  readonly #s: CliState;
  readonly #hostname: string;
  #input = '';
  #wake: (() => void) | undefined;
  #closed = false;
  #interrupt = new AbortController();
  #privileged: boolean;
  #configMode = false;

  constructor(channel: ServerChannel, state: CliState) {
    this.#channel = channel;
    this.#s = state;
    this.#hostname = state.hostname ?? (state.os === 'nxos' ? 'switch' : 'R1');
    this.#privileged = state.enableSecret === undefined;
    channel.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (text.includes('\x03')) {
        this.#interrupt.abort(new Interrupted('^C'));
        this.#input = '';
      } else {
        this.#input += text;
      }
      this.#wake?.();
    });
    channel.on('close', () => {
      this.#closed = true;
      this.#interrupt.abort(new Interrupted('closed'));
      this.#wake?.();
    });
  }

  #write(text: string): void {
    if (!this.#closed) this.#channel.write(text.replace(/\n/g, '\r\n'));
  }

  #prompt(): string {
    const mode = this.#configMode ? '(config)' : '';
    return `${this.#hostname}${mode}${this.#privileged ? '#' : '>'}${this.#s.os === 'nxos' ? ' ' : ''}`;
  }

  async #more(): Promise<void> {
    if (this.#closed) throw new Interrupted('closed');
    const signal = this.#interrupt.signal;
    signal.throwIfAborted();
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    this.#wake = undefined;
    signal.throwIfAborted();
  }

  /** A line up to CR or LF (a CR LF pair counts once), echoed unless `echo` is false. */
  async #readLine(echo = true): Promise<string> {
    for (let i = 0; i < 10_000; i++) {
      const end = this.#input.search(/[\r\n]/);
      if (end >= 0) {
        const line = this.#input.slice(0, end);
        const skip = this.#input.slice(end, end + 2) === '\r\n' ? 2 : 1;
        this.#input = this.#input.slice(end + skip);
        this.#write(`${echo ? line : ''}\n`);
        return line;
      }
      await this.#more();
    }
    throw new Error('line never ended');
  }

  /** One key, as IOS reads `[confirm]`. */
  async #readKey(): Promise<string> {
    while (this.#input.length === 0) await this.#more();
    const key = this.#input[0]!;
    this.#input = this.#input.slice(1);
    this.#write('\n');
    return key;
  }

  async #ask(prompt: string, name: string, options: { echo?: boolean; key?: boolean } = {}): Promise<string> {
    this.#write(prompt);
    const answer = options.key ? await this.#readKey() : await this.#readLine(options.echo ?? true);
    this.#s.answers.push({ prompt: name, answer: options.echo === false ? '***' : answer });
    return answer;
  }

  async run(): Promise<void> {
    this.#write(`\n${this.#hostname} simulated ${this.#s.os}\n\n`);
    for (let i = 0; i < 10_000 && !this.#closed; i++) {
      this.#write(this.#prompt());
      try {
        const line = (await this.#readLine()).trim();
        if (line === '') continue;
        this.#s.commands.push(line);
        await this.#command(line);
      } catch (error) {
        if (!(error instanceof Interrupted) || this.#closed) return;
        this.#interrupt = new AbortController();
        this.#write('^C\n');
      }
    }
  }

  async #command(line: string): Promise<void> {
    if (line === 'enable') {
      const secret = await this.#ask('Password: ', 'enable', { echo: false });
      if (secret === this.#s.enableSecret) this.#privileged = true;
      else this.#write('% Bad secrets\n\n');
      return;
    }
    if (/^terminal (length|width) \d+$/.test(line)) return;
    if (!this.#privileged) return this.#invalid();
    if (line === 'configure terminal') {
      this.#configMode = true;
      this.#write('Enter configuration commands, one per line.  End with CNTL/Z.\n');
      return;
    }
    if (this.#configMode) {
      if (line === 'end') {
        this.#configMode = false;
        return;
      }
      const removed = /^no (.+)$/.exec(line);
      const key = (l: string) => l.split(' ').slice(0, -1).join(' ');
      if (removed) {
        const at = this.#s.config.indexOf(removed[1]!);
        if (at >= 0) this.#s.config.splice(at, 1);
      } else if (/^ip (tftp|ftp|ssh|http client|http) source-interface \S+$/.test(line)) {
        const same = this.#s.config.findIndex((l) => key(l) === key(line));
        if (same >= 0) this.#s.config.splice(same, 1);
        this.#s.config.push(line);
      } else {
        return this.#invalid();
      }
      return;
    }
    const include = /^show running-config \| include \^?(.+)$/.exec(line);
    if (include) {
      for (const l of this.#s.config) if (l.startsWith(include[1]!)) this.#write(`${l}\n`);
      return;
    }
    const copy = /^copy (\S+) (\S+)(.*)$/.exec(line);
    if (copy) return this.#copy(copy[1]!, copy[2]!, copy[3]!.trim());
    return this.#invalid();
  }

  #invalid(): void {
    const marker = this.#s.os === 'nxos' ? '% Invalid command at' : '% Invalid input detected at';
    this.#write(`${' '.repeat(this.#prompt().length)}^\n${marker} '^' marker.\n\n`);
  }

  async #copy(from: string, to: string, rest: string): Promise<void> {
    const nxos = this.#s.os === 'nxos';
    const extras = rest.split(/\s+/).filter(Boolean);
    let vrf: string | undefined;
    for (let i = 0; i < extras.length; i++) {
      if (extras[i] === 'vrf') vrf = extras[++i];
      else if (!(nxos && ['compact', 'use-kstack'].includes(extras[i]!))) return this.#invalid();
    }
    if (vrf !== undefined && !['management', 'default', 'Mgmt-intf'].includes(vrf)) {
      this.#write(nxos ? `Error: VRF ${vrf} does not exist\n` : `%Error: invalid vrf ${vrf}\n`);
      return;
    }
    const toDevice = to.startsWith('bootflash:');
    const fromDevice = from.startsWith('bootflash:');
    if (toDevice === fromDevice) return this.#invalid();
    const url = new URL(toDevice ? from : to);
    const protocol = url.protocol.slice(0, -1) as Protocol;
    if (nxos && vrf === undefined) {
      vrf =
        (await this.#ask("Enter vrf (If no input, current vrf 'default' is considered): ", 'vrf')) ||
        'default';
    }
    let devicePath = (toDevice ? to : from).slice('bootflash:'.length);
    let remotePath = decodeURIComponent(url.pathname.slice(1));
    if (!nxos && toDevice) {
      const suggested =
        devicePath === '' || devicePath.endsWith('/') ? devicePath + path.basename(remotePath) : devicePath;
      devicePath =
        (await this.#ask(`Destination filename [${suggested}]? `, 'destination filename')) || suggested;
    }
    if (!nxos && fromDevice) {
      await this.#ask(`Address or name of remote host [${url.hostname}]? `, 'remote host');
      remotePath =
        (await this.#ask(`Destination filename [${remotePath}]? `, 'destination filename')) || remotePath;
    }
    const local = path.join(this.#s.flash, devicePath);
    if (fromDevice && !(await exists(local))) {
      this.#write(
        nxos
          ? `${from}: No such file or directory\nCopy failed\n`
          : `%Error opening ${from} (No such file or directory)\n`,
      );
      return;
    }
    let secret = decodeURIComponent(url.password);
    if (secret === '' && protocol !== 'tftp' && !(protocol === 'http' && url.username === '')) {
      secret = await this.#ask(
        nxos ? `${url.username}@${url.hostname}'s password: ` : 'Password: ',
        'password',
        { echo: false },
      );
    }
    if (toDevice && (await exists(local))) {
      if (nxos) {
        const yes = await this.#ask(
          'Warning: There is already a file existing with this name. Do you want to overwrite (y/n)?[n] ',
          'overwrite',
        );
        if (!/^y/i.test(yes)) return;
      } else {
        this.#write('%Warning:There is a file already existing with this name\n');
        const key = await this.#ask('Do you want to over write? [confirm]', 'overwrite', { key: true });
        if (key === 'n') {
          this.#write('%Error copying ... (Copy aborted: file already existing)\n');
          return;
        }
      }
    }
    if (!nxos && toDevice && this.#s.askErase) {
      const key = await this.#ask('Erase bootflash: before copying? [confirm]', 'erase', { key: true });
      if (key !== 'n') {
        this.#write('%Error: the test device refuses to erase its flash\n');
        return;
      }
    }
    const display = `${protocol}://${url.host}${url.pathname}`;
    if (!nxos) this.#write(`Accessing ${display}...\n`);
    const started = performance.now();
    try {
      if (!this.#s.lie) {
        await mkdir(path.dirname(local), { recursive: true });
        const target = this.#target(url, protocol, remotePath, secret);
        using guard = abortSignalAfter(this.#s.clientTimeoutMs ?? 5000, [this.#interrupt.signal]);
        const signal = guard.signal;
        const transport = await loadTransport(protocol);
        if (toDevice) {
          // Like OpenSSH, the device's SSH client asks again when the password is refused.
          for (let attempt = 1; ; attempt++) {
            try {
              await transport.download(target, createWriteStream(local), { signal, onSize: () => {} });
              break;
            } catch (error) {
              const ssh = protocol === 'scp' || protocol === 'sftp';
              if (!ssh || attempt === 3 || reason(error) !== 'Permission denied') throw error;
              this.#write('Permission denied, please try again.\n');
              target.password = await this.#ask('Password: ', 'password', { echo: false });
            }
          }
        } else {
          const size = (await stat(local)).size;
          await transport.upload(target, createReadStream(local), { size, signal, onWriteStart: () => {} });
        }
      }
    } catch (error) {
      if (this.#interrupt.signal.aborted) throw this.#interrupt.signal.reason;
      await rm(toDevice ? local : '', { force: true }).catch(() => {});
      const why = reason(error);
      if (nxos) this.#write(`${why}\nCopy failed\n`);
      else this.#write(`%Error ${toDevice ? 'opening' : 'writing'} ${display} (${why})\n`);
      return;
    }
    const bytes = this.#s.lie ? 1234 : (await stat(local)).size;
    const secs = ((performance.now() - started) / 1000).toFixed(3);
    if (nxos) this.#write('Copy complete.\n');
    else this.#write(`!!!!!\n[OK - ${bytes} bytes]\n\n${bytes} bytes copied in ${secs} secs\n`);
  }

  #target(
    url: URL,
    protocol: Protocol,
    remotePath: string,
    password: string,
  ): { -readonly [K in keyof ResolvedUrl]: ResolvedUrl[K] } {
    const standard = STANDARD_PORTS[protocol];
    const port = url.port === '' ? standard : Number(url.port);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    return {
      url: url.href,
      displayUrl: url.href,
      protocol,
      server: host,
      host,
      port,
      standardPort: port === standard,
      path: remotePath,
      username: url.username === '' ? undefined : decodeURIComponent(url.username),
      password: password === '' ? undefined : password,
      // https trusts the trustpoints only, like a device: our transport takes them as its CA.
      entry: this.#s.trustpoints.length === 0 ? {} : { certificate: this.#s.trustpoints.join('') },
    };
  }
}

function reason(error: unknown): string {
  const e = error as { code?: string; message?: string; name?: string };
  if (e.name === 'TimeoutError' || /timed? ?out/i.test(e.message ?? '')) return 'Timed out';
  if (e.code === 'ERR_NOT_FOUND') return 'No such file or directory';
  if (/login refused|authentication|401|530/i.test(e.message ?? '')) return 'Permission denied';
  if (/ECONNREFUSED|refused/i.test(e.message ?? '')) return 'Connection refused by remote host';
  return 'I/O error';
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}
