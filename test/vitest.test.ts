/**
 * testbed-fileserver/vitest: the example project of docs/vitest.md run by a nested vitest, with
 * the package installed the way a user has it (its package.json exports over the run's build),
 * and the global setup's file lookup, failure and teardown in-process.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import type { TestProject } from 'vitest/node';
import { FileServer } from '../src/file-server.js';
import {
  PROVIDED_TESTBED,
  type ProvidedTestbed,
  TESTBED_FILE_ENV,
  testbedGlobalSetup,
} from '../src/vitest/global-setup.js';
import { tmpDir } from './helpers/tmp.js';

const repo = path.resolve(import.meta.dirname, '..');
const run = promisify(execFile);

/** A project folder with the example in it and the package installed from the run's build. */
async function installedExample(dir: string): Promise<void> {
  await cp(path.join(repo, 'test/examples/vitest'), dir, { recursive: true });
  const pkg = path.join(dir, 'node_modules', 'testbed-fileserver');
  await mkdir(pkg, { recursive: true });
  await cp(path.join(repo, 'package.json'), path.join(pkg, 'package.json'));
  await symlink(inject('distDir'), path.join(pkg, 'dist'));
  await symlink(path.join(repo, 'node_modules', 'vitest'), path.join(dir, 'node_modules', 'vitest'));
}

describe('the vitest example project, as installed', () => {
  it('passes: the run-wide server, the fixtures, their teardown', async () => {
    await using dir = await tmpDir();
    await installedExample(dir.path);
    const report = path.join(dir.path, 'report.json');
    const vitest = path.join(repo, 'node_modules', 'vitest', 'vitest.mjs');
    const { CI: _ci, ...env } = process.env;
    const result = await run(
      process.execPath,
      [vitest, 'run', '--root', dir.path, '--reporter=json', `--outputFile=${report}`],
      { cwd: dir.path, env, timeout: 120_000 },
    ).catch((error: { code: number; stdout: string; stderr: string }) => error);
    const json = JSON.parse(await readFile(report, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      testResults: Array<{
        assertionResults: Array<{ title: string; status: string; failureMessages: string[] }>;
      }>;
    };
    const failures = json.testResults.flatMap((file) =>
      file.assertionResults.filter((t) => t.status !== 'passed'),
    );
    expect(failures, JSON.stringify(result)).toEqual([]);
    expect(json.numPassedTests).toBe(5);
  });
});

describe('testbedGlobalSetup', () => {
  function project(root: string, provided: Record<string, unknown> = {}) {
    const given: Record<string, unknown> = {};
    const fake = {
      config: { root },
      getProvidedContext: () => provided,
      provide: (key: string, value: unknown) => {
        given[key] = value;
      },
    } as unknown as TestProject;
    return { fake, given };
  }

  it('takes the file from the environment, provides live entries, and stops the servers on teardown', async () => {
    await using dir = await tmpDir();
    await writeFile(
      path.join(dir.path, 'lab.yaml'),
      'testbed:\n  servers:\n    files: { dynamic: true, protocol: http, address: 127.0.0.1 }\n    corp: { protocol: ftp, address: 198.51.100.2 }\n',
    );
    const { fake, given } = project(dir.path);
    process.env[TESTBED_FILE_ENV] = 'lab.yaml';
    let teardown: () => Promise<void>;
    try {
      teardown = await testbedGlobalSetup()(fake);
    } finally {
      delete process.env[TESTBED_FILE_ENV];
    }
    const provided = given[PROVIDED_TESTBED] as ProvidedTestbed;
    expect(provided.file).toBe(path.join(dir.path, 'lab.yaml'));
    const files = provided.testbed.servers.files!;
    expect(files).toMatchObject({
      protocol: 'http',
      address: '127.0.0.1',
      dynamic: true,
      username: expect.any(String),
    });
    expect(provided.testbed.servers.corp).toEqual({ protocol: 'ftp', address: '198.51.100.2' });
    // It really listens, until teardown.
    const socket = net.connect(files.port as number, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.destroy();
    await teardown();
    const refused = net.connect(files.port as number, '127.0.0.1');
    await expect(
      new Promise((resolve, reject) => refused.once('connect', resolve).once('error', reject)),
    ).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it("the guide's own setup file (options) starts the example's servers and stops them", async () => {
    const { default: setup } = await import('./examples/vitest/testbed-setup.js');
    const root = path.join(repo, 'test/examples/vitest');
    const { fake, given } = project(root, { testbedFile: 'ignored.yaml' });
    const teardown = await setup(fake);
    const provided = given[PROVIDED_TESTBED] as ProvidedTestbed;
    expect(provided.file).toBe(path.join(root, 'testbed.yaml'));
    expect(provided.testbed.servers.images).toMatchObject({
      protocol: 'http',
      root: path.join(root, 'images'),
    });
    await teardown();
    await rm(path.join(root, 'images'), { recursive: true, force: true });
  });

  it('the config file option wins; a missing file or a failing server fails the setup with nothing left running', async () => {
    await using dir = await tmpDir();
    await expect(testbedGlobalSetup()(project(dir.path).fake)).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    });
    await expect(
      testbedGlobalSetup()(project(dir.path, { testbedFile: 'missing.yaml' }).fake),
    ).rejects.toMatchObject({ code: 'ERR_TESTBED_INVALID' });

    await using busy = await FileServer.start({ protocol: 'http', address: '127.0.0.1' });
    await writeFile(
      path.join(dir.path, 'busy.yaml'),
      `testbed:\n  servers:\n    first: { dynamic: true, protocol: ftp, address: 127.0.0.1 }\n    second: { dynamic: true, protocol: http, address: 127.0.0.1, port: ${busy.port} }\n`,
    );
    const { fake, given } = project(dir.path, { testbedFile: 'ignored.yaml' });
    await expect(testbedGlobalSetup({ file: 'busy.yaml' })(fake)).rejects.toMatchObject({
      code: 'ERR_ADDRESS_IN_USE',
    });
    expect(given).toEqual({});
  });
});
