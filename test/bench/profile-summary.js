'use strict';

/**
 * Summarises the V8 CPU profiles that `BENCH_PROFILE_DIR` makes the bench write: self time by
 * function and by package, counted only inside the drain window the bench recorded next to
 * each process's profile, and divided by the jobs of that window.
 *
 *   node test/bench/profile-summary.js <dir of one process kind> [top]
 *
 * The directory holds `*.cpuprofile` files (one per process) and `window.json`
 * (`{ fromUs, toUs, jobs }`, on the system's monotonic clock, which V8 stamps profiles with).
 */
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const directory = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!directory) {
  console.error('usage: node test/bench/profile-summary.js <profile dir> [top]');
  process.exit(2);
}

const window = JSON.parse(readFileSync(join(directory, 'window.json'), 'utf8'));
const profiles = readdirSync(directory).filter((name) => name.endsWith('.cpuprofile'));
const byFunction = new Map();
const byPackage = new Map();
let windowUs = 0;
let idleUs = 0;

for (const name of profiles) {
  addProfile(JSON.parse(readFileSync(join(directory, name), 'utf8')));
}

const busyUs = windowUs - idleUs;
const perJob = (us) => (us / window.jobs).toFixed(1);
console.log(
  `${profiles.length} profile(s), window ${((window.toUs - window.fromUs) / 1000).toFixed(0)} ms, ` +
    `${window.jobs} jobs: busy ${(busyUs / 1000).toFixed(0)} ms = ${perJob(busyUs)} us/job ` +
    '(sampled JavaScript thread only; GC and native work show as their own entries)',
);
printTable('self time by package', byPackage, busyUs, perJob);
printTable(`top ${top} functions by self time`, byFunction, busyUs, perJob, top);

function addProfile(profile) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  let at = profile.startTime;

  profile.samples.forEach((nodeId, index) => {
    at += profile.timeDeltas[index];
    const next = profile.timeDeltas[index + 1] ?? 0;
    if (at < window.fromUs || at > window.toUs || next <= 0) {
      return;
    }

    const frame = nodes.get(nodeId).callFrame;
    windowUs += next;
    if (frame.functionName === '(idle)') {
      idleUs += next;

      return;
    }

    const label = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
    byFunction.set(label, (byFunction.get(label) ?? 0) + next);
    const pack = packageOf(frame);
    byPackage.set(pack, (byPackage.get(pack) ?? 0) + next);
  });
}

function packageOf(frame) {
  const url = frame.url;
  if (!url) {
    return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  }

  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) {
    return match[1];
  }

  if (url.startsWith('node:')) {
    return `node:${url.slice(5).split('/')[0]}`;
  }

  const source = /\/dist\/(src\/modules\/[^/]+|src|test)/.exec(url);

  return source ? source[1] : url;
}

function shortUrl(url) {
  return url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, 'dist/');
}

function printTable(title, totals, busyUs, perJob, limit = Infinity) {
  console.log(`\n${title}:`);
  [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .forEach(([label, us]) => {
      const share = ((us / busyUs) * 100).toFixed(1).padStart(5);
      console.log(`${perJob(us).padStart(8)} us/job ${share}%  ${label}`);
    });
}
