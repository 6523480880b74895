#!/usr/bin/env node
/**
 * The `testbed-fileserver` command: serve, up, get, put. See docs/cli.md.
 * @internal
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileServerError } from '../errors.js';
import { usageError } from './args.js';
import { EXIT, exitCodeOf } from './exit-codes.js';
import { errorJson } from './output.js';

const USAGE = `Usage: testbed-fileserver <command> [options]

Commands:
  serve <protocol> [root]   serve a folder over tftp, ftp, http, scp or sftp until Ctrl-C
  up <testbed.yaml>         start the dynamic servers of a testbed file until Ctrl-C
  get <url> [local]         download a file from a server
  put <local> <url>         upload a file to a server
  help [command]            this text, or a command's options

Options: --help (any command), --version.
Exit status: 0 ok, 2 bad arguments, 3 port busy, 4 permission denied, 5 no matching address,
6 bad root, 7 testbed problem, 8 file missing or refused, 9 transfer failed, 10 verification
failed, 130 interrupted, 1 anything else. See docs/cli.md.
`;

/** `--help` of each command; commands are loaded on use, so that each starts no slower than it must. */
async function usageOf(command: string): Promise<string | undefined> {
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).SERVE_USAGE;
    case 'up':
      return (await import('./up.js')).UP_USAGE;
    case 'get':
      return (await import('./transfer.js')).GET_USAGE;
    case 'put':
      return (await import('./transfer.js')).PUT_USAGE;
    default:
      return undefined;
  }
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit status. */
async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).serve(rest);
    case 'up':
      return (await import('./up.js')).up(rest);
    case 'get':
    case 'put':
      return (await import('./transfer.js')).transfer(command, rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0];
      const text = topic === undefined ? USAGE : await usageOf(topic);
      if (text === undefined) throw usageError(`no command ${JSON.stringify(topic)}`);
      process.stdout.write(text);
      return command === undefined ? EXIT.usage : EXIT.ok;
    }
    case '--version':
    case '-v':
      process.stdout.write(`${version()}\n`);
      return EXIT.ok;
    default:
      throw usageError(`unknown command ${JSON.stringify(command)}`);
  }
}

function version(): string {
  // dist/cli/main.js: the package.json is a few folders up.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'testbed-fileserver') return pkg.version ?? 'unknown';
  }
  return 'unknown';
}

/** Reports a failure: a message on stderr, and an `error` event on stdout with --json. */
function report(error: unknown, argv: readonly string[]): number {
  // An interrupt while starting or copying rejects with the signal's name.
  if (error === 'SIGINT' || error === 'SIGTERM' || (error as Error)?.name === 'AbortError') {
    process.stderr.write('testbed-fileserver: interrupted\n');
    return EXIT.interrupted;
  }
  const code = exitCodeOf(error);
  if (argv.includes('--json'))
    process.stdout.write(`${JSON.stringify({ event: 'error', ...errorJson(error), exitCode: code })}\n`);
  const tag = error instanceof FileServerError ? ` [${error.code}]` : '';
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`testbed-fileserver: ${message}${tag}\n`);
  if (code === EXIT.failure && error instanceof Error && !(error instanceof FileServerError)) {
    process.stderr.write(`${error.stack}\n`);
  }
  return code;
}

/** How long the process may take to exit by itself once a command has finished. */
const EXIT_WATCHDOG_MS = 5000;

const argv = process.argv.slice(2);
const status = await main(argv).catch((error: unknown) => report(error, argv));
process.exitCode = status;
// Everything is closed by now, so the process ends by itself; if a handle still holds it, say so and end anyway.
setTimeout(() => {
  process.stderr.write('testbed-fileserver: handles still open after stop; exiting\n');
  process.exit(status === EXIT.ok ? EXIT.failure : status);
}, EXIT_WATCHDOG_MS).unref();
