import { describe, expect, it } from 'vitest';
import { parseScpCommand } from '../../src/backends/ssh/scp-command.js';

describe('scp exec command parser', () => {
  it.each([
    ['scp -t /upload/x.bin', { mode: 'sink', path: '/upload/x.bin' }],
    ['scp -f x.bin', { mode: 'source', path: 'x.bin' }],
    [
      'scp -v -r -p -d -t -- -dash',
      { mode: 'sink', recursive: true, preserve: true, targetShouldBeDirectory: true, path: '-dash' },
    ],
    ['scp -rpf dir', { mode: 'source', recursive: true, preserve: true, path: 'dir' }],
    ['scp -q -f "with space.txt"', { mode: 'source', path: 'with space.txt' }],
    ["scp -f 'single quoted;|$'", { mode: 'source', path: 'single quoted;|$' }],
    ['scp -f back\\ slash', { mode: 'source', path: 'back slash' }],
    ['scp -t ~/x', { mode: 'sink', path: '~/x' }],
    ['scp -t ""', { mode: 'sink', path: '.' }],
    ['scp  -t\tfile', { mode: 'sink', path: 'file' }],
  ])('accepts %j', (line, expected) => {
    expect(parseScpCommand(line)).toMatchObject(expected);
  });

  it.each([
    '',
    'scp',
    'scp -t',
    'scp x',
    'scp -t -f x',
    'scp -tf x',
    'scp -t a b',
    'scp -x -t a',
    'scp -S /bin/sh -t a',
    'scp -t a; rm -rf /',
    'scp -t a && id',
    'scp -t a | nc host 1',
    'scp -t $(id)',
    'scp -t `id`',
    'scp -t "$(id)"',
    'scp -t a > /etc/passwd',
    'scp -t *.bin',
    'scp -t a?',
    'scp -t {a,b}',
    'scp -t "unterminated',
    "scp -t 'unterminated",
    'scp -t a\\',
    'scp -t a\nid',
    'scp -t a\u0000b',
    'scp -t a~b',
    '/usr/bin/scp -t a',
    'SCP -t a',
    'sh -c "scp -t a"',
    'cat /etc/passwd',
    'sftp-server',
  ])('refuses %j', (line) => {
    expect(parseScpCommand(line)).toBeUndefined();
  });
});
