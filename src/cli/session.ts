/**
 * What `serve` and `up` share once their servers listen: the banner, one line (or JSON event)
 * per transfer, the live testbed file, and a clean stop on Ctrl-C or SIGTERM.
 * @internal
 * @module
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { FileServer, FileServerInfo } from '../file-server.js';
import type { Testbed } from '../testbed/testbed.js';
import { deviceCommands, exampleFile } from './device-commands.js';
import { type Output, testbedEntry, testbedYaml, transferJson, transferLine } from './output.js';
import type { Interrupts } from './signals.js';

/** The Linux builder's exit-status marker, which only a CLI session reading the output needs. */
const EXIT_ECHO = /; echo "tbfs-exit=\$\?"$/;

/** A running server under its testbed name. */
export type Named = readonly [name: string, server: FileServer];

/** Prints transfers as they end. */
export function reportTransfers(out: Output, servers: readonly Named[]): void {
  if (out.quiet && !out.json) return;
  for (const [, server] of servers) {
    server.on('transfer', (event) => {
      out.event(transferJson(event));
      out.line(transferLine(event));
    });
  }
}

/** The `listening` JSON event of a server: its whole info, credentials included. */
export function listeningEvent(name: string, info: FileServerInfo): Record<string, unknown> {
  return { event: 'listening', ...info, name };
}

/** Root, address, bind and credentials of one server, indented. */
export function describeServer(info: FileServerInfo, readOnlyHint = ''): string[] {
  const lines = [
    `  root      ${info.root} (${info.readOnly ? `read-only${readOnlyHint}` : 'read-write'})`,
    `  address   ${info.address} (${info.addressReason})`,
  ];
  if (info.bindAddress !== info.address || info.bindPort !== info.port) {
    lines.push(`  bound to  ${info.bindAddress} port ${info.bindPort}`);
  }
  if (info.username !== undefined) {
    lines.push(`  username  ${info.username}`, `  password  ${info.password}`);
  }
  if (info.certificateFingerprint256 !== undefined) {
    lines.push(
      `  cert      SHA-256 ${info.certificateFingerprint256}`,
      `  key pin   ${info.publicKeyPin} (curl --pinnedpubkey)`,
    );
  }
  return lines;
}

/** The testbed block and example device commands. */
export function printUsageHints(out: Output, servers: readonly Named[], oses: readonly string[]): void {
  out.line('');
  out.line('# Testbed entry (paste into a testbed file, or use --output FILE):');
  out.line(testbedYaml(servers.map(([name, server]) => [name, server.info])).trimEnd());
  for (const [name, server] of servers) {
    if (oses.length === 0) break;
    const file = exampleFile(server.info.root);
    out.line('');
    out.line(`# Device commands for ${name} (file ${file}):`);
    for (const line of deviceCommands(server.info, oses, file)) out.line(line.replace(EXIT_ECHO, ''));
  }
}

/**
 * Writes the testbed with every running server's live entry (pyATS shape, no `dynamic` flag) to
 * `file`, readable by its owner only since it holds passwords. Returns a function that removes it.
 */
export async function writeLiveTestbed(
  file: string,
  testbed: Testbed,
  servers: readonly Named[],
): Promise<() => Promise<void>> {
  const running = new Map(servers.map(([name, server]) => [name, server.info]));
  const entries = [...testbed.servers].map(([name, entry]) => {
    const info = running.get(name);
    return [name, info ? testbedEntry(info) : entry] as const;
  });
  const doc = {
    testbed: {
      ...(testbed.name === undefined ? {} : { name: testbed.name }),
      servers: Object.fromEntries(entries),
    },
    ...(testbed.devices.size > 0 ? { devices: Object.fromEntries(testbed.devices) } : {}),
  };
  const target = path.resolve(file);
  const temp = `${target}.${process.pid}.tmp`;
  await writeFile(
    temp,
    `# Written by testbed-fileserver while its servers run; removed when they stop.\n${stringify(doc, { lineWidth: 0 })}`,
    {
      mode: 0o600,
    },
  );
  await rename(temp, target);
  return () => rm(target, { force: true });
}

/**
 * Waits for Ctrl-C or SIGTERM, then stops the servers (the newest first), letting transfers
 * finish for their grace period unless a second signal arrives.
 */
export async function holdUntilInterrupted(
  out: Output,
  servers: readonly Named[],
  interrupts: Interrupts,
  cleanup: () => Promise<void>,
): Promise<void> {
  // Signal handlers do not keep Node running; a server that binds nothing (information-only scp) would let it exit.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  const signal = await interrupts.received.finally(() => clearInterval(keepAlive));
  out.event({ event: 'stopping', signal });
  out.line(`${signal}: stopping (again to cut running transfers short)`, true);
  const failures: unknown[] = [];
  for (const [, server] of [...servers].reverse()) {
    await server.stop({ signal: interrupts.force }).catch((error: unknown) => failures.push(error));
  }
  await cleanup();
  if (failures.length > 0) throw failures[0];
  out.event({ event: 'stopped' });
  out.line('stopped', true);
}
