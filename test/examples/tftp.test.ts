/**
 * The examples of docs/tftp.md. Each `#region` is copied verbatim into the guide
 * (test/docs.test.ts checks), so the guide cannot drift from code that runs.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import {
  decodePacket,
  FileServer,
  isFileServerError,
  rootHandler,
  TftpClient,
  TftpError,
  TftpServer,
  type TftpTransferStats,
} from 'testbed-fileserver';
import { expect, it } from 'vitest';
import { tmpDir } from '../helpers/tmp.js';

it('a static server', async () => {
  await using dir = await tmpDir();
  const root = dir.path;
  await writeFile(path.join(root, 'ios.bin'), 'image bytes');
  const seen: TftpTransferStats[] = [];
  // #region static-server
  await using server = new TftpServer({
    root, // served read/write: uploads land in a temporary file, renamed when complete
    address: '127.0.0.1', // one explicit address: replies leave from the address asked
    port: 0, // 0: a free port (69 needs privileges)
  });
  server.on('transfer', (t) => console.log(t.direction, t.filename, t.outcome, t.bytes)); // read ios.bin ok 11
  const { address, port } = await server.start();
  // #endregion static-server
  server.on('transfer', (t) => seen.push(t));
  const client = new TftpClient({ host: address, port });
  await client.get('ios.bin', path.join(root, 'copy.bin'));
  expect(await readFile(path.join(root, 'copy.bin'), 'utf8')).toBe('image bytes');
  await expect.poll(() => seen.length).toBe(1);
});

it('a dynamic-content server', async () => {
  await using dir = await tmpDir();
  const root = dir.path;
  await writeFile(path.join(root, 'ios.bin'), 'image bytes');
  const uploads: string[] = [];
  // #region dynamic-server
  const files = rootHandler(root); // the folder, with the package's path and upload rules
  await using server = new TftpServer({
    address: '127.0.0.1',
    handler: {
      openRead(request) {
        // A boot config made for each device, from the address it asks from.
        if (request.filename === 'boot.cfg') return Buffer.from(`hostname dev-${request.peer.address}\n`);
        // Anything else comes from the folder (Buffers, streams and { read(position, length), size } work too).
        return files.openRead!(request);
      },
      openWrite(request) {
        if (!request.filename.startsWith('cores/')) {
          throw new TftpError('ERR_TFTP', 'uploads go to cores/', { tftpCode: 2 }); // ERROR 2 to the device
        }
        const chunks: Buffer[] = [];
        return new Writable({
          write(chunk, _encoding, done) {
            chunks.push(chunk);
            done();
          },
          final(done) {
            uploads.push(Buffer.concat(chunks).toString()); // the upload is complete: store it
            done();
          },
        });
      },
    },
  });
  const { port } = await server.start();
  // #endregion dynamic-server
  const client = new TftpClient({ host: '127.0.0.1', port });
  const sink = new PassThrough();
  const got: Buffer[] = [];
  sink.on('data', (c) => got.push(c));
  await client.get('boot.cfg', sink);
  expect(Buffer.concat(got).toString()).toBe('hostname dev-127.0.0.1\n');
  await client.get('ios.bin', new PassThrough().resume());
  await client.put(Buffer.from('core dump'), 'cores/r1.core');
  expect(uploads).toEqual(['core dump']);
  await expect(client.put(Buffer.from('x'), 'etc/passwd')).rejects.toMatchObject({ tftpCode: 2 });
});

it('the client', async () => {
  await using dir = await tmpDir();
  await using server = new TftpServer({ root: dir.path, address: '127.0.0.1' });
  const { port } = await server.start();
  await writeFile(path.join(dir.path, 'ios.bin'), Buffer.alloc(300_000, 1));
  const local = path.join(dir.path, 'local');
  await mkdir(local);
  const localFile = path.join(local, 'ios.bin');
  // #region client
  const client = new TftpClient({ host: '127.0.0.1', port, blksize: 1468, windowsize: 16 });

  // To a path (temporary file + rename: a failed get leaves nothing) or to any Writable.
  const stats = await client.get('ios.bin', localFile, {
    onProgress: ({ bytes, total }) => process.stdout.write(`\r${bytes}/${total}`),
    signal: AbortSignal.timeout(60_000),
  });
  console.log(stats.negotiatedOptions); // { blksize: '1468', windowsize: '16', tsize: '300000' }

  // From a path, a Readable or a Buffer; tsize is announced when the size is known.
  await client.put(localFile, 'backup/ios.bin');
  await client.put(Buffer.from('hostname R1\n'), 'configs/R1.cfg', { blksize: 512, windowsize: 1 });

  try {
    await client.get('no-such-file', localFile);
  } catch (error) {
    if (!(error instanceof TftpError)) throw error;
    console.log(error.code, error.tftpCode, error.message); // ERR_TFTP 1 Server sent ERROR 1: No such file: ...
  }
  // #endregion client
  expect(stats).toMatchObject({ outcome: 'ok', bytes: 300_000 });
  expect((await readFile(path.join(dir.path, 'backup/ios.bin'))).length).toBe(300_000);
  expect(await readFile(localFile)).toHaveLength(300_000);
});

it('statistics, counters and the packet hook', async () => {
  await using dir = await tmpDir();
  await writeFile(path.join(dir.path, 'ios.bin'), Buffer.alloc(50_000));
  let packets = 0;
  const ended: TftpTransferStats[] = [];
  // #region stats
  await using server = new TftpServer({
    root: dir.path,
    address: '127.0.0.1',
    countersIntervalMs: 60_000, // emit 'counters' every minute
    onPacket: ({ direction, packet }) => {
      // Every datagram of every transfer; costs nothing when no hook is set.
      if (direction === 'in' && decodePacket(packet).opcode === 5) console.log('peer sent an ERROR');
      packets++;
    },
  });
  server.on('transferstart', (t) => console.log('start', t.filename, t.blksize, t.windowsize));
  server.on('transfer', (t) => {
    // Every transfer, whatever its outcome: ok, timeout, peer-error, probe, protocol-error, local-error, aborted.
    console.log(
      t.outcome,
      t.filename,
      t.bytes,
      t.blocks,
      t.retransmits,
      t.rttMs,
      t.durationMs,
      t.error?.message,
    );
    ended.push(t);
  });
  server.on('counters', (c) => console.log(c)); // { requests, sessionsActive, transfersOk, bytesSent, ... }
  const { port } = await server.start();
  // ...
  await new TftpClient({ host: '127.0.0.1', port }).get('ios.bin', new PassThrough().resume());
  console.log(server.counters.transfersOk, server.counters.bytesSent); // 1 50000
  // #endregion stats
  await expect.poll(() => ended.length).toBe(1);
  expect(packets).toBeGreaterThan(4);
  expect(server.counters).toMatchObject({ transfersOk: 1, bytesSent: 50_000 });
});

it('TFTP through FileServer', async () => {
  await using dir = await tmpDir();
  await writeFile(path.join(dir.path, 'ios.bin'), 'image');
  // #region file-server
  await using server = await FileServer.start({
    protocol: 'tftp',
    address: '127.0.0.1',
    root: dir.path,
    maxFileSize: 512 * 2 ** 20, // uploads beyond it: ERROR 3
    tftp: { maxBlksize: 1468, maxWindowsize: 16, retries: 5 }, // engine options (TftpBackendOptions)
  });
  console.log(server.url); // tftp://127.0.0.1:40567/
  server.on('transfer', (event) => console.log(event.path, event.ok, event.details?.retransmits));
  // #endregion file-server
  const client = new TftpClient({ host: '127.0.0.1', port: server.port, blksize: 65464 });
  const stats = await client.get('ios.bin', new PassThrough().resume());
  expect(stats.blksize).toBe(1468);
  await expect(client.put(Buffer.alloc(10), '../escape')).rejects.toSatisfy((e) => isFileServerError(e));
});
