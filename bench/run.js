#!/usr/bin/env node
/**
 * Benchmark runner: `npm run bench [-- name... ] [-- --quick]`.
 *
 * Every `bench/<name>.bench.js` exports `default async function run({ quick, log })` returning
 * result rows (plain objects, the same keys in every row of one table; a row may carry a `table`
 * key to split its results into several tables). The runner runs all of them, or the names given,
 * prints one table per benchmark (and per `table`), and writes everything with the machine's
 * description to bench/results/latest.json (quick runs: quick.json), then renders the chart and
 * tables of docs/benchmarks.md from it (bench/report.js). Running some benchmarks by name
 * replaces only their results.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const here = import.meta.dirname;
const args = process.argv.slice(2);
const quick = args.includes('--quick') || process.env.BENCH_QUICK === '1';
const wanted = args.filter((a) => !a.startsWith('--'));

function machine() {
  const cpus = os.cpus();
  let kernel = os.release();
  try {
    kernel = execFileSync('uname', ['-srm'], { encoding: 'utf8' }).trim();
  } catch {}
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel,
    date: new Date().toISOString(),
    quick,
  };
}

function cell(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number')
    return Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1);
  return String(value);
}

function printTable(title, rows) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((c) => c !== 'table');
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (values) => `| ${values.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\n### ${title}\n`);
  console.log(line(columns));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of cells) console.log(line(row));
}

const files = (await readdir(here)).filter((f) => f.endsWith('.bench.js')).sort();
const selected =
  wanted.length === 0 ? files : files.filter((f) => wanted.includes(f.replace(/\.bench\.js$/, '')));
if (wanted.length > 0 && selected.length !== wanted.length) {
  const known = files.map((f) => f.replace(/\.bench\.js$/, ''));
  console.error(
    `Unknown benchmark(s): ${wanted.filter((w) => !known.includes(w)).join(', ')}; known: ${known.join(', ')}`,
  );
  process.exit(2);
}

const results = { machine: machine(), benchmarks: {} };
console.log(`Machine: ${JSON.stringify(results.machine)}`);
let failed = false;
for (const file of selected) {
  const name = file.replace(/\.bench\.js$/, '');
  console.log(`\n## ${name}${quick ? ' (quick)' : ''}`);
  const started = performance.now();
  try {
    const { default: run } = await import(pathToFileURL(path.join(here, file)).href);
    const rows = await run({ quick, log: (...m) => console.log(`  ${name}:`, ...m) });
    results.benchmarks[name] = {
      date: new Date().toISOString(),
      seconds: Math.round((performance.now() - started) / 1000),
      rows,
    };
    const tables = new Map();
    for (const row of rows) tables.set(row.table ?? name, [...(tables.get(row.table ?? name) ?? []), row]);
    for (const [title, group] of tables) printTable(title, group);
  } catch (error) {
    failed = true;
    results.benchmarks[name] = { error: String(error?.stack ?? error) };
    console.error(`${name} failed:`, error);
  }
}
// Quick runs never replace the real results. A run of some benchmarks replaces only theirs in
// latest.json; each figure and its peer's still come from one invocation (see `date`).
await mkdir(path.join(here, 'results'), { recursive: true });
const output = path.join(here, 'results', quick ? 'quick.json' : 'latest.json');
if (wanted.length > 0) {
  const earlier = await readFile(output, 'utf8').then(JSON.parse, () => undefined);
  if (earlier) results.benchmarks = { ...earlier.benchmarks, ...results.benchmarks };
}
await writeFile(output, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nWrote ${path.relative(process.cwd(), output)}`);
// Real results also render docs/benchmarks.svg and the tables of docs/benchmarks.md.
if (!quick && !failed) {
  await (await import('./report.js')).report(results);
  console.log('Wrote docs/benchmarks.svg and the results of docs/benchmarks.md');
}
process.exit(failed ? 1 : 0);
