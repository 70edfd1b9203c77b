/** Below this, Express's JSON parser would refuse a payload that the ledger accepts. */
const MIN_JSON_BODY_BYTES = 1024 * 1024;

/**
 * The JSON body limit the HTTP server needs for a given payload limit: room for a payload at
 * the limit several times over (a client may escape or indent it), so that an oversized payload
 * is refused by the validation that names it, with 400, rather than by the parser. A body past
 * this limit is refused with 413. Express's own default, 100 kB, is below one payload.
 *
 * @param payloadLimitBytes - the configured `PAYLOAD_LIMIT_BYTES`
 * @returns a byte count for `app.useBodyParser('json', { limit })`
 */
export function jsonBodyLimitBytes(payloadLimitBytes: number): number {
  return Math.max(MIN_JSON_BODY_BYTES, payloadLimitBytes * 4);
}

/**
 * How deeply a request body may nest. class-transformer, which the ValidationPipe runs, recurses
 * once per level and overflows the stack at about 1,300 levels; this keeps such bodies a 400.
 */
export const MAX_JSON_DEPTH = 256;

/**
 * Keys the ValidationPipe deletes from every object of a body, to block prototype pollution. A
 * payload holding one is refused rather than stored without it.
 */
export const RESERVED_JSON_KEYS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
]);
