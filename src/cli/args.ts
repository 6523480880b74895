/**
 * Command-line parsing on node:util parseArgs, with the value checks every command shares.
 * Every mistake is an ERR_CLI_USAGE error, which the CLI turns into exit status 2.
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { FileServerError } from '../errors.js';

/** Option definitions as parseArgs takes them. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Parsed options: strings and booleans by option name. */
export type Values = Record<string, string | boolean | undefined>;

/** A usage mistake: the message, plus the command whose help the user should read. */
export function usageError(message: string, command?: string): FileServerError {
  const hint = command ? `testbed-fileserver ${command} --help` : 'testbed-fileserver --help';
  return new FileServerError('ERR_CLI_USAGE', `${message} (see ${hint})`);
}

/** Parses `argv` for `command`; unknown options and missing values are usage errors. */
export function parse(
  command: string,
  argv: readonly string[],
  options: OptionSpec,
  positionals: { min: number; max: number },
): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (error) {
    // parseArgs' messages go on with advice about `--`; the first sentence says it all.
    throw usageError((error as Error).message.split(/\.\s/)[0]!, command);
  }
  if (parsed.values.help) return parsed;
  const count = parsed.positionals.length;
  if (count < positionals.min) throw usageError(`${command}: missing arguments`, command);
  if (count > positionals.max) {
    throw usageError(
      `${command}: unexpected argument ${JSON.stringify(parsed.positionals[positionals.max])}`,
      command,
    );
  }
  return parsed;
}

/** A string option's value (parseArgs guarantees the type for `type: 'string'`). */
export function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** `--port`: an integer 0..65535 or `standard`. */
export function parsePort(value: string, option = '--port'): number | 'standard' {
  if (value === 'standard') return value;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw usageError(`${option} must be 0..65535 or "standard", got ${JSON.stringify(value)}`, 'serve');
  }
  return port;
}

const sizeUnits: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `--max-file-size`: bytes, or a number with K, M, G or T (binary units: 1K = 1024). */
export function parseSize(value: string, option = '--max-file-size'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const bytes = match ? Math.floor(Number(match[1]) * sizeUnits[match[2]!.toLowerCase()]!) : Number.NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw usageError(
      `${option} must be a size such as 1048576, 512K, 100M or 2G; got ${JSON.stringify(value)}`,
      'serve',
    );
  }
  return bytes;
}

/** `--advertise`: `address`, `address:port`, `[v6]:port`, a bare IPv6 address, or `:port`. */
export function parseAdvertise(value: string): { address?: string; port?: number } {
  let address: string | undefined = value;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  if (bracketed) [, address, portText] = bracketed;
  else if ((value.match(/:/g)?.length ?? 0) === 1) [address, portText] = value.split(':');
  const port = portText === undefined ? undefined : Number(portText);
  if (
    (!address && port === undefined) ||
    (port !== undefined && !(/^\d+$/.test(portText!) && port >= 1 && port <= 65535))
  ) {
    throw usageError(
      `--advertise must be ADDRESS, ADDRESS:PORT, [IPv6]:PORT or :PORT (port 1..65535); got ${JSON.stringify(value)}`,
      'serve',
    );
  }
  return { ...(address ? { address } : {}), ...(port === undefined ? {} : { port }) };
}

/** `--user`/`--password`/`--password-file`: both or neither. */
export function parseCredentials(values: Values, command: string): { username?: string; password?: string } {
  const username = str(values, 'user');
  let password = str(values, 'password');
  const file = str(values, 'password-file');
  if (password !== undefined && file !== undefined) {
    throw usageError('give --password or --password-file, not both', command);
  }
  if (file !== undefined) {
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw usageError(`cannot read --password-file ${file}: ${(error as Error).message}`, command);
    }
  }
  if (username === '' || password === '')
    throw usageError('--user and --password must not be empty', command);
  return {
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  };
}

/** `--os iosxe,linux`: a comma-separated list. */
export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
