/**
 * Turns a results file into docs: `node bench/report.js [bench/results/latest.json]` renders
 * docs/benchmarks.svg (every figure as ours ÷ peer on a log scale, oriented so that right of 1
 * means ours is better) and rewrites the tables between the `results` markers of
 * docs/benchmarks.md. bench/run.js calls it after a full, non-quick run.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

const docs = path.join(import.meta.dirname, '..', 'docs');
const START = '<!-- results:start (written by bench/report.js; do not edit by hand) -->';
const END = '<!-- results:end -->';

const rowsOf = (results, name) => results.benchmarks[name]?.rows ?? [];
const byTable = (rows, prefix) => rows.filter((r) => String(r.table ?? '').startsWith(prefix));

/**
 * The chart's bars: `{ section, label, value }` where value is "times better than the peer"
 * (throughput: ours/peer; times and memory: peer/ours).
 */
export function bars(results) {
  const out = [];
  const add = (section, label, value) => {
    if (Number.isFinite(value) && value > 0) out.push({ section, label, value });
  };
  for (const r of byTable(rowsOf(results, 'transfer'), 'HTTP, HTTPS and FTP')) {
    add('Throughput', `${r.protocol.toUpperCase()} ${r.operation} vs ${r.peer} (MB/s)`, r['MB/s ratio']);
  }
  for (const r of byTable(rowsOf(results, 'copy'), 'copy()')) {
    add('Throughput', `copy() ${r.protocol} ${r.operation} vs ${r.peer} (MB/s)`, r['MB/s ratio']);
  }
  for (const r of byTable(rowsOf(results, 'transfer'), 'HTTP small-file')) {
    add('Throughput', `HTTP 1 KiB requests vs ${r.peer} (req/s)`, r.ratio);
  }
  for (const r of byTable(rowsOf(results, 'tftp'), 'TFTP downloads, window 1').filter(
    (r) => r.client === 'curl',
  )) {
    add('Throughput', `TFTP curl blksize ${r.blksize} vs tftpd-hpa (MB/s)`, r['ours/tftpd-hpa']);
  }
  for (const r of byTable(rowsOf(results, 'tftp'), 'TFTP downloads with windowsize').filter(
    (r) => r.client === 'atftp',
  )) {
    add('Throughput', `TFTP atftp ${r.blksize}×${r.windowsize} vs atftpd (MB/s)`, r['ours/atftpd']);
  }
  for (const r of byTable(rowsOf(results, 'tftp'), 'TFTP uploads, window 1').filter(
    (r) => r.client === 'curl',
  )) {
    add('Throughput', `TFTP curl put blksize ${r.blksize} vs tftpd-hpa (MB/s)`, r['ours/tftpd-hpa']);
  }
  for (const r of byTable(rowsOf(results, 'tftp'), 'TFTP uploads with windowsize').filter(
    (r) => r.client === 'atftp',
  )) {
    add('Throughput', `TFTP atftp put ${r.blksize}×${r.windowsize} vs atftpd (MB/s)`, r['ours/atftpd']);
  }
  // Concurrent downloads: tftp-load's 100/500/1000, else tftp.bench.js's single count.
  const load = rowsOf(results, 'tftp-load').filter((r) => /concurrent/.test(r.table ?? ''));
  const concurrent =
    load.length > 0 ? load : rowsOf(results, 'tftp').filter((r) => /concurrent/.test(r.table ?? ''));
  const groups = new Map();
  for (const r of concurrent) groups.set(r.table, [...(groups.get(r.table) ?? []), r]);
  for (const [table, group] of groups) {
    const ours = group.find((r) => r.server === 'ours');
    const count = /(\d+) concurrent/.exec(table)?.[1];
    for (const peer of group.filter((r) => r.server !== 'ours')) {
      add(
        'Throughput',
        `TFTP ${count} concurrent downloads vs ${peer.server} (MB/s)`,
        ours?.['MB/s'] / peer['MB/s'],
      );
    }
  }
  for (const r of byTable(rowsOf(results, 'transfer'), 'HTTP, HTTPS and FTP')) {
    add(
      'Server CPU per byte moved',
      `${r.protocol.toUpperCase()} ${r.operation} vs ${r.peer}`,
      r['peer CPU s'] / r['ours CPU s'],
    );
  }
  for (const r of byTable(rowsOf(results, 'tftp-load'), 'TFTP ').filter((r) => r.direction)) {
    for (const peer of ['tftpd-hpa', 'atftpd']) {
      add(
        'Server CPU per byte moved',
        `TFTP ${r.client} ${r.direction} vs ${peer}`,
        r[`${peer} CPU s`] / r['ours CPU s'],
      );
    }
  }
  for (const r of byTable(rowsOf(results, 'lifecycle'), 'Server process')) {
    add('Start-up (spawn until it answers)', `${r.protocol} vs ${r.peer}`, r['peer ready'] / r['ours ready']);
  }
  for (const r of byTable(rowsOf(results, 'lifecycle'), 'Server process')) {
    add('Stop (SIGTERM until exit)', `${r.protocol} vs ${r.peer}`, r['peer stop'] / r['ours stop']);
  }
  for (const r of byTable(rowsOf(results, 'lifecycle'), 'Server process')) {
    add('Idle memory of the process', `${r.protocol} vs ${r.peer}`, r['peer MiB'] / r['ours MiB']);
  }
  return out;
}

const xml = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An SVG bar chart of `bars(results)`. */
export function svg(results) {
  const data = bars(results);
  const width = 960;
  const labelWidth = 360;
  const plotLeft = labelWidth + 20;
  const plotWidth = width - plotLeft - 90;
  const rowHeight = 22;
  const min = 0.01;
  const max = 100;
  const x = (v) =>
    plotLeft +
    ((Math.log10(Math.min(max, Math.max(min, v))) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) *
      plotWidth;
  const parts = [];
  let y = 70;
  let section;
  for (const bar of data) {
    if (bar.section !== section) {
      section = bar.section;
      y += 10;
      parts.push(`<text x="16" y="${y + 14}" class="section">${xml(section)}</text>`);
      y += rowHeight;
    }
    const better = bar.value >= 1;
    const [from, to] = better ? [x(1), x(bar.value)] : [x(bar.value), x(1)];
    parts.push(
      `<text x="${labelWidth}" y="${y + 15}" class="label" text-anchor="end">${xml(bar.label)}</text>`,
    );
    parts.push(
      `<rect x="${from.toFixed(1)}" y="${y + 4}" width="${Math.max(1, to - from).toFixed(1)}" height="${rowHeight - 8}" class="${better ? 'better' : 'worse'}"/>`,
    );
    const shown =
      bar.value >= 10
        ? bar.value.toFixed(0)
        : bar.value >= 1
          ? bar.value.toFixed(2)
          : bar.value.toPrecision(2);
    const textX = better ? to + 6 : from - 6;
    parts.push(
      `<text x="${textX.toFixed(1)}" y="${y + 15}" class="value" text-anchor="${better ? 'start' : 'end'}">${shown}×</text>`,
    );
    y += rowHeight;
  }
  const height = y + 50;
  const ticks = [0.01, 0.1, 1, 10, 100]
    .map(
      (t) =>
        `<line x1="${x(t)}" y1="60" x2="${x(t)}" y2="${y + 6}" class="${t === 1 ? 'one' : 'grid'}"/><text x="${x(t)}" y="${y + 24}" class="tick" text-anchor="middle">${t}×</text>`,
    )
    .join('');
  const m = results.machine;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" role="img">
<title>testbed-fileserver against its peers: ratios per figure</title>
<style>
  .title { font-size: 17px; font-weight: bold; fill: #222; }
  .subtitle { font-size: 12px; fill: #555; }
  .section { font-size: 13px; font-weight: bold; fill: #333; }
  .label, .value, .tick { font-size: 12px; fill: #333; }
  .better { fill: #2e7d32; }
  .worse { fill: #d84315; }
  .grid { stroke: #ddd; stroke-width: 1; }
  .one { stroke: #222; stroke-width: 1.5; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="16" y="26" class="title">testbed-fileserver against its peers: how many times better (log scale)</text>
<text x="16" y="46" class="subtitle">Right of 1×: ours faster, quicker or smaller; left: the peer is. Medians, one run, loopback, ${xml(m.cores)} × ${xml(m.cpu)}, Node ${xml(m.node)}, ${xml(m.date.slice(0, 10))}.</text>
${ticks}
${parts.join('\n')}
<text x="16" y="${height - 10}" class="subtitle">Throughput: ours ÷ peer. CPU, start-up, stop and memory: peer ÷ ours. Figures in docs/benchmarks.md and bench/results/latest.json.</text>
</svg>
`;
}

function cell(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number')
    return Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1);
  return String(value).replace(/\|/g, '\\|');
}

/** Markdown tables of every benchmark's rows, one per table title. */
export function markdown(results) {
  const m = results.machine;
  const lines = [
    `Run of ${m.date.slice(0, 10)} on ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}${m.quick ? ' (quick run: fewer, smaller transfers)' : ''}.`,
    '',
  ];
  for (const [name, benchmark] of Object.entries(results.benchmarks)) {
    if (benchmark.error) {
      lines.push(`**${name}** failed: \`${String(benchmark.error).split('\n')[0]}\``, '');
      continue;
    }
    const when = benchmark.date ? `, run ${benchmark.date.slice(0, 16).replace('T', ' ')} UTC` : '';
    lines.push(`_bench/${name}.bench.js${when}, ${benchmark.seconds} s_`, '');
    const tables = new Map();
    for (const row of benchmark.rows)
      tables.set(row.table ?? name, [...(tables.get(row.table ?? name) ?? []), row]);
    for (const [title, rows] of tables) {
      const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((c) => c !== 'table');
      lines.push(
        `**${title}**`,
        '',
        `| ${columns.join(' | ')} |`,
        `| ${columns.map(() => '---').join(' | ')} |`,
      );
      for (const row of rows) lines.push(`| ${columns.map((c) => cell(row[c])).join(' | ')} |`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

/** Writes docs/benchmarks.svg and the results section of docs/benchmarks.md. */
export async function report(results) {
  await writeFile(path.join(docs, 'benchmarks.svg'), svg(results));
  const file = path.join(docs, 'benchmarks.md');
  const text = await readFile(file, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${file} has no results markers`);
  await writeFile(file, `${text.slice(0, start + START.length)}\n\n${markdown(results)}\n${text.slice(end)}`);
}

if (process.argv[1] === import.meta.filename) {
  const file = process.argv[2] ?? path.join(import.meta.dirname, 'results', 'latest.json');
  await report(JSON.parse(await readFile(file, 'utf8')));
  console.log('Wrote docs/benchmarks.svg and the results of docs/benchmarks.md');
}
