/**
 * Copy command builders by operating system. Built in: `linux`, `iosxe` (alias `ios`), `nxos`,
 * `iosxr`, `junos`; {@link registerCopyBuilder} adds or replaces one.
 * @module
 */
import { FileServerError } from '../../errors.js';
import { iosxeBuilder } from './iosxe.js';
import { iosxrBuilder } from './iosxr.js';
import { junosBuilder } from './junos.js';
import { linuxBuilder } from './linux.js';
import { nxosBuilder } from './nxos.js';
import type { CopyCommandBuilder } from './types.js';

const builders = new Map<string, CopyCommandBuilder>([
  ['linux', linuxBuilder],
  ['iosxe', iosxeBuilder],
  ['ios', iosxeBuilder],
  ['nxos', nxosBuilder],
  ['iosxr', iosxrBuilder],
  ['junos', junosBuilder],
]);

/** The builder for `os` (case-insensitive). Throws ERR_INVALID_OPTIONS naming the known ones. */
export function copyBuilderFor(os: string): CopyCommandBuilder {
  const builder = builders.get(os.toLowerCase());
  if (builder) return builder;
  throw new FileServerError(
    'ERR_INVALID_OPTIONS',
    `No copy command builder for os ${JSON.stringify(os)}; known: ${[...builders.keys()].join(', ')}`,
    { details: { os } },
  );
}

/** Adds a builder for its `os` and the given aliases, replacing any earlier one. */
export function registerCopyBuilder(builder: CopyCommandBuilder, aliases: readonly string[] = []): void {
  for (const name of [builder.os, ...aliases]) builders.set(name.toLowerCase(), builder);
}
