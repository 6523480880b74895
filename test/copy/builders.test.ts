/**
 * Command text, dialogs and output mapping of every builder, including the platforms that the
 * end-to-end tests do not run (IOS-XR, Junos). The dialogs are checked against prompts as the
 * platforms print them.
 */
import { describe, expect, it } from 'vitest';
import { copyBuilderFor, registerCopyBuilder } from '../../src/copy/builders/index.js';
import type { CopyRequest, RemoteFile } from '../../src/copy/builders/types.js';
import type { Dialog } from '../../src/copy/device.js';
import type { Protocol } from '../../src/transfer.js';

const remote = (protocol: Protocol, port: number, path = 'img/ios.bin'): RemoteFile => ({
  protocol,
  host: '198.18.0.1',
  port,
  path,
  ...(protocol === 'tftp' ? {} : { username: 'tbuser', password: 'Pw-123' }),
});

function build(os: string, request: Partial<CopyRequest> & { remote: RemoteFile }) {
  return copyBuilderFor(os).build({ direction: 'to-device', deviceFile: 'bootflash:', ...request });
}

/** The answer the dialog gives to a prompt, as the session would pick it. */
function answer(dialog: Dialog, prompt: string): string | undefined {
  const step = dialog.find((s) => s.pattern.test(prompt));
  if (!step) return undefined;
  const text = typeof step.answer === 'function' ? step.answer(step.pattern.exec(prompt)!) : step.answer;
  return step.newline === false ? text : `${text}\n`;
}

describe('IOS-XE', () => {
  it('puts ftp and http credentials in the URL, scp only the user, and appends the VRF', () => {
    expect(build('iosxe', { remote: remote('ftp', 2121) }).command).toBe(
      'copy ftp://tbuser:Pw-123@198.18.0.1:2121/img/ios.bin bootflash:ios.bin',
    );
    expect(build('iosxe', { remote: remote('http', 80), vrf: 'Mgmt-intf' }).command).toBe(
      'copy http://tbuser:Pw-123@198.18.0.1/img/ios.bin bootflash:ios.bin vrf Mgmt-intf',
    );
    const scp = build('iosxe', {
      remote: remote('scp', 22),
      direction: 'from-device',
      deviceFile: 'flash:r.cfg',
    });
    expect(scp.command).toBe('copy flash:r.cfg scp://tbuser@198.18.0.1/img/ios.bin');
    expect(scp.secrets).toEqual(['Pw-123']);
    expect(answer(scp.dialog, 'Password: ')).toBe('Pw-123\n');
  });

  it('answers IOS prompts: filenames, [confirm] with a single key, erase no, host key yes', () => {
    const plan = build('ios', { remote: remote('tftp', 69), deviceFile: 'bootflash:new.bin' });
    expect(answer(plan.dialog, 'Destination filename [new.bin]? ')).toBe('new.bin\n');
    expect(answer(plan.dialog, 'Address or name of remote host [198.18.0.1]? ')).toBe('\n');
    expect(answer(plan.dialog, 'Erase bootflash: before copying? [confirm]')).toBe('n');
    expect(answer(plan.dialog, 'Do you want to over write? [confirm]')).toBe('\n');
    expect(answer(plan.dialog, 'Proceed? [confirm]')).toBe('\n');
    expect(answer(plan.dialog, 'Are you sure you want to continue connecting (yes/no)? ')).toBe('yes\n');
    const keep = build('iosxe', { remote: remote('tftp', 69), overwrite: false });
    expect(answer(keep.dialog, 'Do you want to over write? [confirm]')).toBe('n');
    // A prompt in the middle of text is not waiting for an answer.
    expect(answer(plan.dialog, 'Destination filename [x]? was asked earlier\n')).toBeUndefined();
  });

  it('refuses a TFTP server off port 69 and a command that cannot fit in 253 characters', () => {
    expect(() => build('iosxe', { remote: remote('tftp', 6969) })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS', message: expect.stringContaining('port 69') }),
    );
    expect(() => build('iosxe', { remote: remote('http', 80, `${'a'.repeat(260)}.bin`) })).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTIONS',
        details: expect.objectContaining({ max: 253 }),
      }),
    );
    expect(() => build('iosxe', { remote: remote('http', 80), deviceFile: 'flash:a b.bin' })).toThrow(
      /not a plain name/,
    );
  });

  it('maps output to reasons and reads the byte count', () => {
    const plan = build('iosxe', { remote: remote('tftp', 69) });
    const fails = (text: string) => {
      try {
        plan.check(text);
      } catch (error) {
        return (error as { code: string; details: { reason: string } }).details.reason;
      }
      return 'ok';
    };
    expect(fails('%Error opening tftp://198.18.0.1/img/ios.bin (Timed out)')).toBe('timeout');
    expect(fails('%Error opening tftp://198.18.0.1/img/ios.bin (No such file or directory)')).toBe(
      'not-found',
    );
    expect(fails('%Error opening ftp://198.18.0.1/x (Permission denied)')).toBe('permission');
    expect(fails('%Error copying tftp://x (Not enough space on device)')).toBe('no-space');
    expect(fails("% Invalid input detected at '^' marker.")).toBe('invalid-command');
    expect(fails('%Error reading tftp://x (I/O error)')).toBe('failed');
    expect(
      plan.check('Accessing tftp://x...\n!!!!\n[OK - 1,234 bytes]\n1234 bytes copied in 0.5 secs'),
    ).toEqual({
      confirmed: true,
      bytes: 1234,
    });
  });

  it('sets the source interface by configuration, per protocol', () => {
    expect(build('iosxe', { remote: remote('http', 80), sourceInterface: 'Gi0/0' }).config).toEqual([
      { line: 'ip http client source-interface Gi0/0', prefix: 'ip http client source-interface' },
    ]);
    expect(build('iosxe', { remote: remote('tftp', 69), sourceInterface: 'Vlan10' }).config?.[0]?.line).toBe(
      'ip tftp source-interface Vlan10',
    );
    expect(copyBuilderFor('iosxe').configMode?.show('ip tftp source-interface')).toBe(
      'show running-config | include ^ip tftp source-interface',
    );
  });
});

describe('NX-OS', () => {
  it('defaults the VRF to management, asks the password for ftp and scp, and takes scp ports as an option', () => {
    expect(build('nxos', { remote: remote('tftp', 69) }).command).toBe(
      'copy tftp://198.18.0.1/img/ios.bin bootflash:ios.bin vrf management',
    );
    const ftp = build('nxos', { remote: remote('ftp', 21), vrf: 'default' });
    expect(ftp.command).toBe('copy ftp://tbuser@198.18.0.1/img/ios.bin bootflash:ios.bin vrf default');
    expect(answer(ftp.dialog, "tbuser@198.18.0.1's password: ")).toBe('Pw-123\n');
    const scp = build('nxos', { remote: remote('scp', 2222), options: { compact: true, useKstack: true } });
    expect(scp.command).toBe(
      'copy scp://tbuser@198.18.0.1/img/ios.bin bootflash:ios.bin compact use-kstack vrf management port 2222',
    );
    expect(build('nxos', { remote: remote('http', 8080), vrf: false }).command).toBe(
      'copy http://tbuser:Pw-123@198.18.0.1:8080/img/ios.bin bootflash:ios.bin',
    );
  });

  it('answers the (y/n) overwrite and vrf questions', () => {
    const plan = build('nxos', { remote: remote('tftp', 69) });
    const prompt =
      'Warning: There is already a file existing with this name. Do you want to overwrite (y/n)?[n] ';
    expect(answer(plan.dialog, prompt)).toBe('y\n');
    expect(answer(build('nxos', { remote: remote('tftp', 69), overwrite: false }).dialog, prompt)).toBe(
      'n\n',
    );
    expect(answer(plan.dialog, "Enter vrf (If no input, current vrf 'default' is considered): ")).toBe(
      'management\n',
    );
    expect(() => plan.check('Copy complete.')).not.toThrow();
    expect(() => plan.check('scp: /x: No such file or directory\nCopy failed')).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ reason: 'not-found' }) }),
    );
  });
});

describe('IOS-XR', () => {
  it('keeps ftp passwords out of the URL (genielibs#152) and uses the native scp command', () => {
    const ftp = build('iosxr', { remote: remote('ftp', 21), deviceFile: 'harddisk:' });
    expect(ftp.command).toBe('copy ftp://tbuser@198.18.0.1/img/ios.bin harddisk:ios.bin');
    expect(answer(ftp.dialog, 'Password: ')).toBe('Pw-123\n');
    const scp = build('iosxr', { remote: remote('scp', 2222), deviceFile: 'harddisk:/x.bin', vrf: 'MGMT' });
    expect(scp.command).toBe('scp tbuser@198.18.0.1:img/ios.bin harddisk:/x.bin port 2222 vrf MGMT');
    const up = build('iosxr', {
      remote: remote('scp', 22),
      direction: 'from-device',
      deviceFile: 'harddisk:/x.bin',
    });
    expect(up.command).toBe('scp harddisk:/x.bin tbuser@198.18.0.1:img/ios.bin');
    expect(build('iosxr', { remote: remote('http', 80), deviceFile: 'harddisk:' }).command).toBe(
      'copy http://tbuser:Pw-123@198.18.0.1/img/ios.bin harddisk:ios.bin',
    );
  });

  it('commits configuration and names its source-interface commands', () => {
    const plan = build('iosxr', {
      remote: remote('tftp', 69),
      deviceFile: 'harddisk:',
      sourceInterface: 'MgmtEth0/RP0/CPU0/0',
    });
    expect(plan.config).toEqual([
      { line: 'tftp client source-interface MgmtEth0/RP0/CPU0/0', prefix: 'tftp client source-interface' },
    ]);
    expect(copyBuilderFor('iosxr').configMode).toMatchObject({
      enter: 'configure terminal',
      commit: 'commit',
      exit: 'end',
    });
  });
});

describe('Junos', () => {
  it('file copy with the user in the URL, the password at the prompt, routing instance and source address', () => {
    const plan = build('junos', {
      remote: remote('ftp', 21),
      deviceFile: '/var/tmp/',
      vrf: 'mgmt_junos',
      options: { sourceAddress: '198.18.0.2' },
    });
    expect(plan.command).toBe(
      'file copy ftp://tbuser@198.18.0.1/img/ios.bin /var/tmp/ios.bin routing-instance mgmt_junos source-address 198.18.0.2',
    );
    expect(answer(plan.dialog, 'Password for tbuser@198.18.0.1:')).toBe('Pw-123\n');
    expect(() => plan.check('error: file-fetch failed\nfile copy failed')).toThrow(
      expect.objectContaining({ code: 'ERR_DEVICE_COMMAND_FAILED' }),
    );
  });

  it('refuses what Junos cannot do as asked', () => {
    expect(() => build('junos', { remote: remote('ftp', 21), sourceInterface: 'em0' })).toThrow(
      /sourceAddress/,
    );
    expect(() =>
      build('junos', { remote: remote('ftp', 21), deviceFile: '/var/tmp/', overwrite: false }),
    ).toThrow(/always replaces/);
  });
});

describe('Linux', () => {
  const linux = (protocol: Protocol, client: string | undefined, extra: Partial<CopyRequest> = {}) =>
    build('linux', {
      remote: remote(protocol, protocol === 'tftp' ? 6969 : 2121),
      deviceFile: '/tmp/it is.bin',
      ...(client === undefined ? {} : { options: { client } }),
      ...extra,
    });

  it('downloads under a temporary name, quotes paths for the shell, and reads the exit status', () => {
    const plan = linux('ftp', undefined);
    expect(plan.command).toBe(
      "if curl -sS -g --fail -u tbuser -o '/tmp/it is.bin.tbfs-part' ftp://198.18.0.1:2121/img/ios.bin; then mv -f '/tmp/it is.bin.tbfs-part' '/tmp/it is.bin'; else rm -f '/tmp/it is.bin.tbfs-part'; false; fi; echo \"tbfs-exit=$?\"",
    );
    expect(answer(plan.dialog, "Enter host password for user 'tbuser':")).toBe('Pw-123\n');
    expect(plan.check('tbfs-exit=0')).toEqual({ confirmed: true, bytes: undefined });
    expect(() =>
      plan.check('curl: (9) Server denied you to change to the given directory\ntbfs-exit=1'),
    ).toThrow(expect.objectContaining({ code: 'ERR_DEVICE_COMMAND_FAILED' }));
    expect(() => plan.check('no status at all')).toThrow(
      expect.objectContaining({ code: 'ERR_DEVICE_COMMAND_FAILED' }),
    );
  });

  it('writes each client’s own command line', () => {
    expect(linux('tftp', 'tftp').command).toContain(
      "tftp -m binary 198.18.0.1 6969 -c get img/ios.bin '/tmp/it is.bin.tbfs-part' 2>&1 | awk",
    );
    expect(linux('tftp', 'busybox').command).toContain(
      "busybox tftp -g -l '/tmp/it is.bin.tbfs-part' -r img/ios.bin 198.18.0.1 6969",
    );
    expect(linux('tftp', 'curl', { direction: 'from-device' }).command).toBe(
      'curl -sS -g -T \'/tmp/it is.bin\' tftp://198.18.0.1:6969/img/ios.bin; echo "tbfs-exit=$?"',
    );
    expect(linux('http', 'busybox').command).toContain('busybox wget -q -O');
    expect(linux('http', 'busybox').command).toContain('http://tbuser:Pw-123@198.18.0.1:2121/img/ios.bin');
    expect(linux('ftp', 'busybox', { direction: 'from-device' }).command).toContain(
      "busybox ftpput -u tbuser -p Pw-123 -P 2121 198.18.0.1 img/ios.bin '/tmp/it is.bin'",
    );
    expect(linux('ftp', 'lftp').command).toContain(
      'lftp -c \'set net:max-retries 2; set net:reconnect-interval-base 1; set net:timeout 20; set xfer:clobber on; open -u tbuser -p 2121 198.18.0.1; get img/ios.bin -o "/tmp/it is.bin.tbfs-part"\'',
    );
    const scp = linux('scp', 'scp', { direction: 'from-device' });
    expect(scp.command).toMatch(
      /^scp -O -q -P 2121 .* '\/tmp\/it is.bin' tbuser@198\.18\.0\.1:img\/ios\.bin; echo/,
    );
    expect(answer(scp.dialog, "tbuser@198.18.0.1's password: ")).toBe('Pw-123\n');
    expect(linux('sftp', 'sshpass').command).toMatch(/^if sshpass -p Pw-123 scp -s /);
    expect(linux('sftp', 'sshpass').dialog).toEqual([]);
  });

  it('runs in a VRF with ip vrf exec, binds the source interface where the client can, and refuses the rest', () => {
    expect(linux('http', 'curl', { vrf: 'mgmt' }).command).toMatch(/^if ip vrf exec mgmt curl /);
    expect(linux('http', 'curl', { sourceInterface: 'eth1' }).command).toContain('--interface eth1');
    expect(linux('scp', 'scp', { sourceInterface: 'eth1' }).command).toContain('BindInterface=eth1');
    expect(() => linux('tftp', 'tftp', { sourceInterface: 'eth1' })).toThrow(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED_PROTOCOL' }),
    );
    expect(() => linux('http', 'busybox', { direction: 'from-device' })).toThrow(/cannot upload/);
    expect(() => linux('http', 'wget')).toThrow(/one of curl, busybox/);
  });

  it('says where each client takes credentials', () => {
    const builder = copyBuilderFor('linux');
    expect(builder.credentialPolicy('tftp')).toBe('none');
    expect(builder.credentialPolicy('ftp')).toBe('prompt');
    expect(builder.credentialPolicy('ftp', { client: 'busybox' })).toBe('command');
    expect(builder.credentialPolicy('http', { client: 'busybox' })).toBe('url');
    expect(builder.credentialPolicy('scp', { client: 'sshpass' })).toBe('command');
  });
});

describe('https', () => {
  const pin = 'sha256//nz+1o17x3ILMmzxdH4NqprvIWrqxhcnhupzL2stTfPA=';
  const secure = (port: number): RemoteFile => ({ ...remote('https', port), publicKeyPin: pin });

  it('Cisco platforms copy https:// with the credentials in the URL, the port only when not 443', () => {
    expect(build('iosxe', { remote: secure(443) }).command).toBe(
      'copy https://tbuser:Pw-123@198.18.0.1/img/ios.bin bootflash:ios.bin',
    );
    expect(build('nxos', { remote: secure(8443), vrf: false }).command).toBe(
      'copy https://tbuser:Pw-123@198.18.0.1:8443/img/ios.bin bootflash:ios.bin',
    );
    expect(build('iosxr', { remote: secure(443), deviceFile: 'harddisk:' }).command).toBe(
      'copy https://tbuser:Pw-123@198.18.0.1/img/ios.bin harddisk:ios.bin',
    );
    expect(build('iosxe', { remote: secure(443), sourceInterface: 'Gi0/0' }).config).toEqual([
      { line: 'ip http client source-interface Gi0/0', prefix: 'ip http client source-interface' },
    ]);
  });

  it('Linux curl pins the server key when the entry publishes one, and verifies as usual when not', () => {
    const pinned = build('linux', { remote: secure(8443), deviceFile: '/tmp/ios.bin' }).command;
    expect(pinned).toContain(`curl -sS -g --fail --insecure --pinnedpubkey ${pin} -u tbuser -o`);
    expect(pinned).toContain('https://198.18.0.1:8443/img/ios.bin');
    const plain = build('linux', { remote: remote('https', 443), deviceFile: '/tmp/ios.bin' }).command;
    expect(plain).not.toMatch(/--insecure|--pinnedpubkey/);
    expect(() =>
      build('linux', { remote: secure(443), deviceFile: '/tmp/x', options: { client: 'busybox' } }),
    ).toThrow(/one of curl/);
  });

  it('FTPS: Linux curl takes TLS (--ssl-reqd) with the key pinned; clients without TLS are refused when the server requires it', () => {
    const ftps = (ftpTls: 'required' | 'optional'): RemoteFile => ({
      ...remote('ftp', 2121),
      publicKeyPin: pin,
      ftpTls,
    });
    expect(build('linux', { remote: ftps('required'), deviceFile: '/tmp/x.bin' }).command).toContain(
      `curl -sS -g --fail --ssl-reqd --insecure --pinnedpubkey ${pin} -u tbuser -o /tmp/x.bin.tbfs-part ftp://198.18.0.1:2121/img/ios.bin`,
    );
    for (const client of ['lftp', 'busybox']) {
      expect(() =>
        build('linux', { remote: ftps('required'), deviceFile: '/tmp/x', options: { client } }),
      ).toThrow(`The linux FTP client ${client} cannot do TLS, which the server requires`);
    }
    for (const os of ['iosxe', 'nxos', 'iosxr', 'junos']) {
      expect(() => build(os, { remote: ftps('required'), deviceFile: 'bootflash:' })).toThrow(
        expect.objectContaining({
          code: 'ERR_UNSUPPORTED_PROTOCOL',
          message: expect.stringContaining(`The ${os} FTP client cannot do TLS`),
        }),
      );
    }
    // TLS offered, not required: the device's plain client is let in.
    expect(build('iosxe', { remote: ftps('optional') }).command).toBe(
      'copy ftp://tbuser:Pw-123@198.18.0.1:2121/img/ios.bin bootflash:ios.bin',
    );
  });

  it('Junos has no https client here: a typed refusal', () => {
    expect(() => build('junos', { remote: secure(443), deviceFile: '/var/tmp/' })).toThrow(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED_PROTOCOL' }),
    );
  });
});

describe('the builder registry', () => {
  it('knows the platforms by os, refuses others by name, and takes new ones', () => {
    expect(copyBuilderFor('IOS').os).toBe('iosxe');
    expect(() => copyBuilderFor('vxworks')).toThrow(/known: linux, iosxe, ios, nxos, iosxr, junos/);
    registerCopyBuilder({ ...copyBuilderFor('linux'), os: 'ubuntu' }, ['debian']);
    expect(copyBuilderFor('debian').os).toBe('ubuntu');
  });
});
