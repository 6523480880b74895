#!/usr/bin/env node
/**
 * One copy() in a process of its own, so that its time and peak memory are measured like a
 * command-line client's: `node bench/copy/client.js '<json>'` with `{ server, from, to }`, prints
 * `{ seconds, maxRssMiB }`.
 */
import { copy, Testbed } from '../../dist/index.js';

const { server, from, to } = JSON.parse(process.argv[2]);
const testbed = new Testbed({ servers: { bench: server } });
const started = performance.now();
await copy(testbed, from, to);
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
