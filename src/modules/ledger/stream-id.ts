/** Redis stream ids: `<milliseconds>-<sequence>`. */
export const STREAM_START = '0-0';

/**
 * The two numbers of an id. Runs a few times for every event the projector reads, so it cuts the
 * id at its dash rather than splitting it into a new array.
 */
function millisecondsOf(id: string): number {
  const dash = id.indexOf('-');

  return Number(dash < 0 ? id : id.slice(0, dash));
}

function sequenceOf(id: string): number {
  const dash = id.indexOf('-');

  return dash < 0 ? 0 : Number(id.slice(dash + 1));
}

/** Negative, zero or positive, as `a` is before, equal to or after `b`. */
export function compareStreamIds(a: string, b: string): number {
  const byTime = millisecondsOf(a) - millisecondsOf(b);

  return byTime !== 0 ? byTime : sequenceOf(a) - sequenceOf(b);
}

/** The Redis time an entry was written, which is when its transition happened. */
export function streamIdTime(id: string): Date {
  return new Date(millisecondsOf(id));
}
