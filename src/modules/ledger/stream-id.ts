/** Redis stream ids: `<milliseconds>-<sequence>`. */
export const STREAM_START = '0-0';

function parts(id: string): [number, number] {
  const [ms, seq] = id.split('-');

  return [Number(ms), Number(seq ?? 0)];
}

/** Negative, zero or positive, as `a` is before, equal to or after `b`. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq] = parts(a);
  const [bMs, bSeq] = parts(b);

  return aMs === bMs ? aSeq - bSeq : aMs - bMs;
}

/** The Redis time an entry was written, which is when its transition happened. */
export function streamIdTime(id: string): Date {
  return new Date(parts(id)[0]);
}
