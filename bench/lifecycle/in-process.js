/**
 * `node --expose-gc in-process.js PROTOCOL COUNT`: starts COUNT idle FileServers of PROTOCOL in
 * this process, one after the other, then stops them. Prints one JSON line: each start and stop
 * in milliseconds, and the resident and heap memory each idle server adds.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { FileServer } from '../../dist/index.js';

const [protocol, countText] = process.argv.slice(2);
const count = Number(countText);
const options = {
  protocol,
  address: '127.0.0.1',
  // Information-only scp publishes an account of this host; the others make up their own.
  ...(protocol === 'scp' ? { username: 'bench', password: 'bench-pw' } : {}),
};

const settle = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await delay(50);
  }
  return process.memoryUsage();
};

// The first start loads the protocol's modules; that is not what is measured.
await (await FileServer.start(options)).stop();
const before = await settle();
const servers = [];
const startMs = [];
for (let i = 0; i < count; i++) {
  const t0 = performance.now();
  servers.push(await FileServer.start(options));
  startMs.push(performance.now() - t0);
}
const after = await settle();
const stopMs = [];
for (const server of servers) {
  const t0 = performance.now();
  await server.stop();
  stopMs.push(performance.now() - t0);
}
const MiB = 2 ** 20;
process.stdout.write(
  `${JSON.stringify({
    startMs,
    stopMs,
    rssMiB: (after.rss - before.rss) / count / MiB,
    heapMiB: (after.heapUsed - before.heapUsed) / count / MiB,
  })}\n`,
);
