'use strict';

/**
 * The few measures the bench process (TypeScript, under Jest) and the producer process (plain
 * Node, `producer.js`) both take. Plain JavaScript so that the producer needs no build step;
 * `bench-measures.d.ts` gives the TypeScript side its types.
 */

/** Runs `count` calls of `task` with at most `inFlight` unfinished at any time. */
async function runConcurrently(count, inFlight, task) {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      await task(next++);
    }
  };

  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

/** The value below which `share` (0 to 1) of the values lie; `undefined` for none. */
function percentile(values, share) {
  if (values.length === 0) {
    return undefined;
  }

  const sorted = Float64Array.from(values).sort();

  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))];
}

/** Jobs per second, rounded to a whole number. */
function rate(jobs, ms) {
  return Math.round((jobs * 1000) / Math.max(ms, 1));
}

module.exports = { runConcurrently, percentile, rate };
