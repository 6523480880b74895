import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatConcreteUrl, parseServerReference, resolveUrl } from '../../src/copy/url.js';
import { Testbed } from '../../src/testbed/testbed.js';

const testbed = new Testbed({
  servers: {
    images: { protocol: 'ftp', address: '198.18.0.1', port: 40123, username: 'tbx', password: 'p@ss:w/rd' },
    Images: { protocol: 'ftp', address: '198.18.0.2', username: 'u', password: 'p' },
    web: { protocol: 'http', address: '198.18.0.1', port: 80, auth: false },
    v6: { protocol: 'tftp', address: 'fe80::1%eth0', port: 69 },
    multi: { protocol: 'tftp', address: ['198.18.0.7', '198.18.0.8'] },
    ssh: { protocol: 'sftp', address: '198.18.0.3', port: 2222, username: 'root', password: 'x' },
    anon: { protocol: 'ftp', address: '198.18.0.4' },
    halfweb: { protocol: 'http', address: '198.18.0.5', username: 'u' },
    noaddr: { protocol: 'ftp', username: 'u', password: 'p' },
    badport: { protocol: 'ftp', address: '198.18.0.6', port: 70000 as number, username: 'u', password: 'p' },
    loose: { address: '198.18.0.9', username: 'u', password: 'p' },
  },
});

describe('resolveUrl', () => {
  it('fills in address, port and percent-encoded credentials', () => {
    const r = resolveUrl(testbed, 'ftp://images/dir/file.bin');
    expect(r.url).toBe('ftp://tbx:p%40ss%3Aw%2Frd@198.18.0.1:40123/dir/file.bin');
    expect(r.displayUrl).toBe('ftp://tbx@198.18.0.1:40123/dir/file.bin');
    expect(r).toMatchObject({
      protocol: 'ftp',
      server: 'images',
      host: '198.18.0.1',
      port: 40123,
      path: 'dir/file.bin',
    });
    expect(r).toMatchObject({ username: 'tbx', password: 'p@ss:w/rd', standardPort: false });
    expect(new URL(r.url).password).toBe('p%40ss%3Aw%2Frd');
  });

  it('places credentials per policy: url, user only, or separate', () => {
    expect(resolveUrl(testbed, 'ftp://images/a', { credentials: 'user' }).url).toBe(
      'ftp://tbx@198.18.0.1:40123/a',
    );
    const separate = resolveUrl(testbed, 'ftp://images/a', { credentials: 'separate' });
    expect(separate.url).toBe('ftp://198.18.0.1:40123/a');
    expect(separate.password).toBe('p@ss:w/rd');
  });

  it('leaves the standard port out and handles servers without credentials', () => {
    expect(resolveUrl(testbed, 'http://web/x.bin').url).toBe('http://198.18.0.1/x.bin');
    expect(resolveUrl(testbed, 'ftp://Images/x').url).toBe('ftp://u:p@198.18.0.2/x');
  });

  it('brackets IPv6 with the zone escaped, and takes the first of several addresses unless told', () => {
    expect(resolveUrl(testbed, 'tftp://v6/boot.bin').url).toBe('tftp://[fe80::1%25eth0]/boot.bin');
    expect(resolveUrl(testbed, 'tftp://multi/a').host).toBe('198.18.0.7');
    expect(resolveUrl(testbed, 'tftp://multi/a', { chooseAddress: (list) => list[1]! }).host).toBe(
      '198.18.0.8',
    );
  });

  it('keeps names case-sensitive and decodes paths; `//` makes a path absolute', () => {
    expect(resolveUrl(testbed, 'ftp://Images/x').host).toBe('198.18.0.2');
    expect(resolveUrl(testbed, 'ftp://images/my%20file.bin').path).toBe('my file.bin');
    expect(resolveUrl(testbed, 'ftp://images/my file.bin').url).toContain('/my%20file.bin');
    const absolute = resolveUrl(testbed, 'ftp://images//srv/images/a.bin');
    expect(absolute.path).toBe('/srv/images/a.bin');
    expect(absolute.url).toBe('ftp://tbx:p%40ss%3Aw%2Frd@198.18.0.1:40123//srv/images/a.bin');
  });

  it('lets scp and sftp reach the same SSH server, and a reference override the credentials', () => {
    expect(resolveUrl(testbed, 'scp://ssh/a').url).toBe('scp://root:x@198.18.0.3:2222/a');
    expect(resolveUrl(testbed, 'sftp://other:pw@ssh/a').url).toBe('sftp://other:pw@198.18.0.3:2222/a');
    expect(resolveUrl(testbed, 'ftp://loose/a').url).toBe('ftp://u:p@198.18.0.9/a');
  });

  it('names what is missing', () => {
    expect(() => resolveUrl(testbed, 'ftp://nope/a')).toThrow(
      expect.objectContaining({
        code: 'ERR_SERVER_NOT_FOUND',
        details: expect.objectContaining({ name: 'nope' }),
      }),
    );
    expect(() => resolveUrl(testbed, 'ftp://nope/a')).toThrow(/servers: images, Images, web/);
    expect(() => resolveUrl(testbed, 'http://images/a')).toThrow(
      expect.objectContaining({
        code: 'ERR_PROTOCOL_MISMATCH',
        details: { server: 'images', serves: 'ftp', asked: 'http' },
      }),
    );
    expect(() => resolveUrl(testbed, 'ftp://anon/a')).toThrow(
      expect.objectContaining({
        code: 'ERR_CREDENTIALS_MISSING',
        details: { server: 'anon', missing: ['username', 'password'] },
      }),
    );
    expect(() => resolveUrl(testbed, 'http://halfweb/a')).toThrow(
      expect.objectContaining({
        code: 'ERR_CREDENTIALS_MISSING',
        details: { server: 'halfweb', missing: ['password'] },
      }),
    );
    expect(() => resolveUrl(testbed, 'ftp://noaddr/a')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    );
    expect(() => resolveUrl(testbed, 'ftp://badport/a')).toThrow(/no usable port/);
    expect(() => resolveUrl(testbed, 'gopher://images/a')).toThrow(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED_PROTOCOL' }),
    );
    expect(() => resolveUrl(testbed, 'images/a')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    );
    expect(() => resolveUrl(testbed, 'ftp:///a')).toThrow(/No server name/);
    expect(() => resolveUrl(testbed, 'ftp://images/%E0%A4%A')).toThrow(/Bad percent-encoding/);
  });

  it('never shows a password written into a reference in its errors', () => {
    expect(() => resolveUrl(testbed, 'gopher://u:Secret-1@images/a')).toThrow(
      expect.not.objectContaining({ message: expect.stringContaining('Secret-1') }),
    );
  });
});

describe('formatConcreteUrl', () => {
  it('round-trips any credentials and path through a WHATWG URL parser', () => {
    const text = fc.string({ minLength: 1, maxLength: 12, unit: 'binary' }).filter((s) => !s.includes('\0'));
    // `.` and `..` segments are path syntax in every URL parser (servers refuse them anyway).
    const segment = text.filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(
        text,
        text,
        fc.array(segment, { minLength: 1, maxLength: 3 }),
        (username, password, segments) => {
          const url = new URL(
            formatConcreteUrl('http', '198.18.0.1', 8080, segments.join('/'), { username, password }),
          );
          expect(decodeURIComponent(url.username)).toBe(username);
          expect(decodeURIComponent(url.password)).toBe(password);
          expect(url.pathname.slice(1).split('/').map(decodeURIComponent)).toEqual(segments);
          expect(url.host).toBe('198.18.0.1:8080');
        },
      ),
    );
  });

  it('parses back to the same parts', () => {
    expect(parseServerReference('sftp://a%20b:c%2Fd@lab.images_1/x/y%25.bin')).toEqual({
      protocol: 'sftp',
      server: 'lab.images_1',
      path: 'x/y%.bin',
      username: 'a b',
      password: 'c/d',
    });
  });
});
