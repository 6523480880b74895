/**
 * The CLI session engine against a scripted terminal: what real devices do to a byte stream
 * (escape sequences and CR LF split across packets, bracketed-paste noise, progress lines
 * redrawn with CR, echo) must not confuse prompt detection, dialogs or the output.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CliSession } from '../../src/copy/cli-session.js';
import type { Logger } from '../../src/log.js';

const quiet = Object.assign(() => {}, { enabled: false }) as Logger;

/** A terminal whose replies to each line the test scripts; what it receives is recorded. */
function terminal(reply: (line: string, t: { send(...chunks: string[]): void }) => void) {
  const received: string[] = [];
  let pending = '';
  const stream: Duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk.toString());
      pending += chunk.toString();
      for (let eol = pending.search(/[\n\x03]/); eol >= 0; eol = pending.search(/[\n\x03]/)) {
        const line = pending.slice(0, eol + 1);
        pending = pending.slice(eol + 1);
        reply(line, t);
      }
      callback();
    },
  });
  const t = {
    send(...chunks: string[]) {
      for (const c of chunks) stream.push(Buffer.from(c, 'latin1'));
    },
  };
  return { stream, received, t };
}

async function started(reply: Parameters<typeof terminal>[0], banner = ['Welcome\r\n', 'R1#']) {
  const term = terminal(reply);
  const session = new CliSession(term.stream, {
    promptPattern: /^[^\n]{0,120}[#>$] ?$/,
    timeoutMs: 2000,
    log: quiet,
    label: 'R1',
  });
  setTimeout(() => term.t.send(...banner), 5);
  await session.start();
  return { session, ...term };
}

describe('CliSession', () => {
  it('learns the prompt and returns the output without echo and prompt, whatever the packet boundaries', async () => {
    const { session } = await started((line, t) => {
      if (line === 'show version\n') {
        // Echo, then output cut in the middle of an escape sequence and of a CR LF pair.
        t.send(
          'show version\r',
          '\n\x1b[?20',
          '04lCisco IOS XE\r',
          '\nuptime 5 weeks\x1b]0;title\x07\r\n',
          'R1',
          '#',
        );
      }
    });
    expect(session.prompt?.test('R1(config)#')).toBe(true);
    await expect(session.run('show version')).resolves.toBe('Cisco IOS XE\nuptime 5 weeks');
  });

  it('keeps progress lines redrawn with CR as separate lines and ignores a stray CR after LF', async () => {
    const { session } = await started((line, t) => {
      if (line === 'fetch\n') t.send('fetch\r\n\r 10%\r 55%\r100%\r\n\rdone\r\nR1#');
    });
    await expect(session.run('fetch')).resolves.toBe(' 10%\n 55%\n100%\ndone');
  });

  it('answers prompts in the order they appear, once each, and only when they wait at the end', async () => {
    const { session, received } = await started((line, t) => {
      if (line.startsWith('copy')) t.send(`${line.trim()}\r\nDestination filename [a.bin]? `);
      else if (line === 'b.bin\n') t.send('b.bin\r\nAbort Copy? [confirm] was printed before\r\nPassword: ');
      else if (line === 'secret\n') t.send('\r\n1024 bytes copied\r\nR1#');
    });
    const output = await session.run('copy scp://u@h/a.bin flash:', {
      dialog: [
        { name: 'filename', pattern: /Destination filename \[[^\]]*\]\?\s*$/, answer: 'b.bin' },
        { name: 'confirm', pattern: /\[confirm\]\s*$/, answer: '' },
        { name: 'password', pattern: /Password:\s*$/, answer: 'secret', secret: true },
      ],
      secrets: ['secret'],
    });
    expect(received.slice(1)).toEqual(['b.bin\n', 'secret\n']);
    expect(output).toContain('1024 bytes copied');
  });

  it('fails a prompt that keeps coming back, hiding secrets, then interrupts back to the prompt', async () => {
    const { session, received } = await started((line, t) => {
      if (line.startsWith('copy')) t.send('copy\r\nPassword: ');
      else if (line === 'Wrong-1\n') t.send('\r\n% Authentication failed, Wrong-1 refused\r\nPassword: ');
      else if (line === '\x03') t.send('^C\r\nR1#');
    });
    const error = await session
      .run('copy x', {
        dialog: [{ name: 'password', pattern: /Password:\s*$/, answer: 'Wrong-1', secret: true, max: 1 }],
        secrets: ['Wrong-1'],
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'ERR_DEVICE_COMMAND_FAILED',
      details: { reason: 'credentials-refused', prompt: 'password' },
    });
    expect(JSON.stringify(error) + (error as Error).message).not.toContain('Wrong-1');
    expect((error as { details: { output: string } }).details.output).toContain('*** refused');
    expect(received.at(-1)).toBe('\x03');
    expect(session.usable).toBe(true);
  });

  it('times out with what the device printed so far, and closes a session that does not come back', async () => {
    const { session } = await started((line, t) => {
      if (line === 'hang\n') t.send('hang\r\nworking...');
    });
    const error = await session.run('hang', { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'ERR_DEVICE_TIMEOUT',
      details: { output: 'working...', timeoutMs: 200 },
    });
    expect(session.usable).toBe(false);
    await expect(session.run('anything')).rejects.toMatchObject({ code: 'ERR_DEVICE_CONNECTION' });
  });

  it('rejects with the signal reason when aborted', async () => {
    const { session } = await started((line, t) => {
      if (line === 'hang\n') t.send('hang\r\n');
      if (line === '\x03') t.send('\r\nR1#');
    });
    const reason = new Error('stop now');
    await expect(session.run('hang', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(session.run('hang', { signal: AbortSignal.timeout(50) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(session.usable).toBe(true);
  });

  it('runs concurrent commands one after the other', async () => {
    const { session } = await started((line, t) => {
      const command = line.trim();
      setTimeout(() => t.send(`${command}\r\nout-${command}\r\nR1#`), command === 'a' ? 50 : 0);
    });
    await expect(Promise.all([session.run('a'), session.run('b')])).resolves.toEqual(['out-a', 'out-b']);
  });

  it('reports a closed connection as ERR_DEVICE_CONNECTION with the output so far', async () => {
    const { session, stream } = await started((line, t) => {
      if (line === 'reload\n') {
        t.send('reload\r\nbye');
        setTimeout(() => stream.destroy(), 20);
      }
    });
    await expect(session.run('reload')).rejects.toMatchObject({
      code: 'ERR_DEVICE_CONNECTION',
      details: { output: 'bye' },
    });
  });
});
