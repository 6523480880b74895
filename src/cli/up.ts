/**
 * `testbed-fileserver up <testbed.yaml>`: every `dynamic: true` server of a testbed file until
 * Ctrl-C, pyATS's Easypy file server plugin as a command.
 * @internal
 * @module
 */
import { startDynamicServers } from '../dynamic-servers.js';
import { FileServerError } from '../errors.js';
import { Testbed } from '../testbed/testbed.js';
import { PROTOCOLS, type Protocol } from '../transfer.js';
import { parse, parseList, str, usageError } from './args.js';
import { createOutput } from './output.js';
import { OUTPUT_OPTIONS } from './serve.js';
import {
  describeServer,
  holdUntilInterrupted,
  listeningEvent,
  type Named,
  printUsageHints,
  reportTransfers,
  writeLiveTestbed,
} from './session.js';
import { trapInterrupts } from './signals.js';

/** `up --help`. */
export const UP_USAGE = `Usage: testbed-fileserver up <testbed.yaml> [options]

Starts every server marked \`dynamic: true\` in the testbed file, prints their entries, and stops
them all on Ctrl-C. If one cannot start, the others are stopped and the error is reported.

Options:
      --protocol NAME   protocol of dynamic entries that name none (pyATS filetransfer.protocol)
  -o, --output FILE     write the testbed with the live entries while running (mode 600),
                        for other processes: testbed-fileserver get http://images/f --testbed FILE
      --os LIST         device examples for these OSes (default: none; e.g. --os iosxe,linux)
      --json            one JSON object per line instead of text
  -q, --quiet           only the addresses and credentials
`;

/** Runs `up`; resolves with the exit status. */
export async function up(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    'up',
    argv,
    { ...OUTPUT_OPTIONS, protocol: { type: 'string' } },
    { min: 1, max: 1 },
  );
  if (values.help) {
    process.stdout.write(UP_USAGE);
    return 0;
  }
  const out = createOutput({ json: values.json === true, quiet: values.quiet === true });
  const file = positionals[0]!;
  const defaultProtocol = str(values, 'protocol')?.toLowerCase();
  if (defaultProtocol !== undefined && !PROTOCOLS.includes(defaultProtocol as Protocol)) {
    throw usageError(`--protocol must be one of ${PROTOCOLS.join(', ')}`, 'up');
  }
  const oses = parseList(str(values, 'os') ?? '');
  const testbed = await Testbed.load(file);
  if (![...testbed.servers.values()].some((entry) => entry.dynamic === true)) {
    throw new FileServerError('ERR_TESTBED_INVALID', `${file} has no server with dynamic: true`);
  }

  using interrupts = trapInterrupts();
  await using dynamic = await startDynamicServers(testbed, {
    signal: interrupts.stop,
    ...(defaultProtocol === undefined ? {} : { defaultProtocol: defaultProtocol as Protocol }),
  });
  const servers: Named[] = [...dynamic.servers];
  reportTransfers(out, servers);
  const output = str(values, 'output');
  const removeOutput = output ? await writeLiveTestbed(output, testbed, servers) : async () => {};

  for (const [name, server] of servers) {
    const info = server.info;
    out.event(listeningEvent(name, info));
    out.line(`${info.protocol} server ${name} listening on ${info.url}`, true);
    for (const line of describeServer(info))
      out.line(line, line.includes('username') || line.includes('password'));
  }
  printUsageHints(out, servers, oses);
  out.line('');
  out.line(
    `Transfers (Ctrl-C stops ${servers.length === 1 ? 'the server' : `all ${servers.length} servers`}):`,
  );
  await holdUntilInterrupted(out, servers, interrupts, removeOutput);
  return 0;
}
