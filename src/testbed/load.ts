/**
 * Reads a testbed file in the pyATS shape (YAML or JSON):
 *
 * ```yaml
 * testbed:
 *   name: lab
 *   servers:
 *     images: { dynamic: true, protocol: tftp, subnet: 198.18.0.0/24, path: ./images, port: standard }
 *     corp-ftp: { protocol: ftp, address: 198.18.5.5, credentials: { default: { username: u, password: '%ENV{FTP_PW}' } } }
 * devices:
 *   R1: { os: iosxe, connections: { cli: { protocol: ssh, ip: 198.18.0.2 } }, credentials: { default: { username: admin, password: '%ENV{R1_PW}' } } }
 * ```
 * @internal
 * @module
 */
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FileServerError } from '../errors.js';
import type { DeviceEntry, ServerEntry, TestbedInit } from './testbed.js';

type Plain = Record<string, unknown>;

function invalid(source: string, message: string, cause?: unknown): FileServerError {
  return new FileServerError(
    'ERR_TESTBED_INVALID',
    `${source}: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Replaces `%ENV{NAME}` in every string with the environment variable's value. */
function substituteEnv(value: unknown, source: string, where: string): unknown {
  if (typeof value === 'string') {
    return value.replace(/%ENV\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const found = process.env[name];
      if (found === undefined) throw invalid(source, `${where} uses %ENV{${name}}, which is not set`);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, source, `${where}[${i}]`));
  if (isPlain(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, source, `${where}.${k}`)]),
    );
  }
  return value;
}

function normaliseServer(name: string, raw: unknown, source: string, baseDir: string): ServerEntry {
  const where = `servers.${name}`;
  if (!isPlain(raw)) throw invalid(source, `${where} must be a mapping`);
  const { credentials, custom, path: pathField, ...rest } = raw;
  const entry: ServerEntry = { ...rest };
  if (typeof entry.protocol === 'string') entry.protocol = entry.protocol.toLowerCase();
  else if (entry.protocol !== undefined) throw invalid(source, `${where}.protocol must be a string`);
  if (entry.port !== undefined && (entry.port as unknown) !== 'standard') {
    const port = entry.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw invalid(source, `${where}.port must be an integer 0..65535 or "standard"`);
    }
  }
  if (entry.dynamic !== undefined && typeof entry.dynamic !== 'boolean') {
    throw invalid(source, `${where}.dynamic must be true or false`);
  }
  const root = entry.root ?? pathField;
  if (root !== undefined) {
    if (typeof root !== 'string') throw invalid(source, `${where}.path must be a string`);
    // A dynamic server's folder is on this host: resolve it against the testbed file's folder.
    entry.root = entry.dynamic ? path.resolve(baseDir, root) : root;
  }
  if (credentials !== undefined) {
    if (!isPlain(credentials)) throw invalid(source, `${where}.credentials must be a mapping`);
    const chosen = [entry.protocol, 'default', ...Object.keys(credentials)]
      .map((key) => (typeof key === 'string' ? credentials[key] : undefined))
      .find(isPlain);
    if (chosen) {
      if (entry.username === undefined && typeof chosen.username === 'string')
        entry.username = chosen.username;
      if (entry.password === undefined && chosen.password !== undefined)
        entry.password = String(chosen.password);
    }
  }
  if (isPlain(custom)) {
    if (custom.http_auth === false && entry.auth === undefined) entry.auth = false;
    entry.custom = custom;
  }
  return entry;
}

function normaliseDevice(name: string, raw: unknown, source: string): DeviceEntry {
  const where = `devices.${name}`;
  if (!isPlain(raw)) throw invalid(source, `${where} must be a mapping`);
  for (const key of ['connections', 'credentials'] as const) {
    if (raw[key] !== undefined && !isPlain(raw[key]))
      throw invalid(source, `${where}.${key} must be a mapping`);
  }
  for (const [connName, conn] of Object.entries((raw.connections as Plain | undefined) ?? {})) {
    if (!isPlain(conn)) throw invalid(source, `${where}.connections.${connName} must be a mapping`);
    if (conn.port !== undefined && !(Number.isInteger(conn.port) && (conn.port as number) > 0)) {
      throw invalid(source, `${where}.connections.${connName}.port must be a positive integer`);
    }
  }
  return raw as DeviceEntry;
}

/**
 * Parses testbed text (YAML, which includes JSON). `source` names the file in error messages;
 * `baseDir` is where relative `path:` values of dynamic servers start from.
 */
export function parseTestbedText(text: string, source: string, baseDir: string): TestbedInit {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (error) {
    throw invalid(source, `not valid YAML or JSON: ${(error as Error).message}`, error);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isPlain(doc)) throw invalid(source, 'the top level must be a mapping');
  doc = substituteEnv(doc, source, 'testbed') as Plain;
  const top = doc as Plain;
  const tb = top.testbed === undefined ? {} : top.testbed;
  if (!isPlain(tb)) throw invalid(source, '`testbed` must be a mapping');
  const servers = tb.servers ?? top.servers ?? {};
  const devices = top.devices ?? tb.devices ?? {};
  if (!isPlain(servers)) throw invalid(source, '`servers` must be a mapping');
  if (!isPlain(devices)) throw invalid(source, '`devices` must be a mapping');
  const name = tb.name ?? top.name;
  return {
    name: typeof name === 'string' ? name : undefined,
    servers: Object.fromEntries(
      Object.entries(servers).map(([n, s]) => [n, normaliseServer(n, s, source, baseDir)]),
    ),
    devices: Object.fromEntries(Object.entries(devices).map(([n, d]) => [n, normaliseDevice(n, d, source)])),
  };
}
