import { execFile } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { FileServer } from '../src/file-server.js';
import { channels, redact, redactUrl } from '../src/log.js';
import type { TransferEvent } from '../src/transfer.js';
import { basicAuth } from './helpers/http.js';

describe('logging', () => {
  it('debug logs show what happens and never the password, even with every section on', async () => {
    const script = `
      const { FileServer } = await import(${JSON.stringify(path.join(inject('distDir'), 'index.js'))});
      const server = await FileServer.start({ protocol: 'http', address: '127.0.0.1', name: 'logged' });
      const { url, username, password } = server.info;
      const auth = 'Basic ' + Buffer.from(username + ':' + password).toString('base64');
      await fetch(url, { headers: { authorization: auth } }).then((r) => r.text());
      await fetch(url + 'missing.bin', { headers: { authorization: auth } }).then((r) => r.text());
      await server.stop();
      process.stdout.write(password);`;
    const { stdout: password, stderr } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', script],
      { env: { ...process.env, NODE_DEBUG: 'fileserver*' }, timeout: 20_000 },
    );
    expect(password).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(stderr).toContain('FILESERVER');
    expect(stderr).toContain('listening');
    expect(stderr).toContain('stopped');
    expect(stderr).toContain("'***'");
    expect(stderr).not.toContain(password);
  });

  it('the library writes nothing to stdout or stderr when logging is off', async () => {
    const script = `
      const { FileServer } = await import(${JSON.stringify(path.join(inject('distDir'), 'index.js'))});
      const server = await FileServer.start({ protocol: 'http', address: '127.0.0.1' });
      await fetch(server.url).then((r) => r.text());
      await server.stop();`;
    const env = { ...process.env };
    delete env.NODE_DEBUG;
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', script],
      {
        env,
        timeout: 20_000,
      },
    );
    expect(stdout).toBe('');
    expect(stderr).toBe('');
  });

  it('redacts secret fields and URL passwords', () => {
    expect(redact({ username: 'u', password: 'p', nested: [{ passphrase: 'x', token: 't' }] })).toEqual({
      username: 'u',
      password: '***',
      nested: [{ passphrase: '***', token: '***' }],
    });
    expect(redactUrl('ftp://user:s3cret@198.18.0.1:21/x')).toBe('ftp://user:***@198.18.0.1:21/x');
  });
});

describe('diagnostics channels', () => {
  it('publish every transfer and server start/stop, without credentials', async () => {
    const transfers: TransferEvent[] = [];
    const starts: Record<string, unknown>[] = [];
    const onTransfer = (message: unknown) => transfers.push(message as TransferEvent);
    const onStart = (message: unknown) => starts.push(message as Record<string, unknown>);
    diagnostics.subscribe(channels.transfer, onTransfer);
    diagnostics.subscribe(channels.serverStart, onStart);
    try {
      await using server = await FileServer.start({ protocol: 'http', address: '127.0.0.1', name: 'diag' });
      const { url, username, password } = server.info;
      await fetch(`${url}x.txt`, {
        method: 'PUT',
        body: 'x',
        headers: { authorization: basicAuth(username!, password!) },
      });
      expect(starts.find((s) => s.name === 'diag')).toMatchObject({ password: '***', protocol: 'http' });
      expect(transfers.find((t) => t.server === 'diag')).toMatchObject({
        path: 'x.txt',
        direction: 'upload',
        ok: true,
      });
    } finally {
      diagnostics.unsubscribe(channels.transfer, onTransfer);
      diagnostics.unsubscribe(channels.serverStart, onStart);
    }
  });
});

describe('await using', () => {
  it('runs natively on Node 24 and newer (lowered on older Node)', async () => {
    let disposed = false;
    const block = async () => {
      await using _resource = {
        [Symbol.asyncDispose]: async () => {
          disposed = true;
        },
      };
    };
    await block();
    expect(disposed).toBe(true);
    const native = block.toString().includes('await using');
    expect(native).toBe(Number(process.versions.node.split('.')[0]) >= 24);
  });
});
