/** Shorter values are too likely to be ordinary words to be worth hiding. */
const MIN_REDACTED_LENGTH = 4;
/** Payloads can be large; looking at their first values is enough to catch echoed fields. */
const MAX_VALUES = 1000;
export const REDACTED = '[redacted]';

/**
 * Replaces every string (and long number) found in the payload by `[redacted]` wherever it
 * appears in `message`, so that an error that echoes its input does not carry payload contents
 * into the ledger or the logs.
 */
export function redactPayloadValues(message: string, payload: unknown): string {
  const values = collectValues(payload)
    .filter((value) => value.length >= MIN_REDACTED_LENGTH)
    .sort((a, b) => b.length - a.length);

  let redacted = message;
  for (const value of values) {
    if (redacted.includes(value)) {
      redacted = redacted.split(value).join(REDACTED);
    }
  }

  return redacted;
}

function collectValues(payload: unknown): string[] {
  const values: string[] = [];
  const pending: unknown[] = [payload];

  while (pending.length > 0 && values.length < MAX_VALUES) {
    const value = pending.pop();
    if (typeof value === 'string') {
      values.push(value);
    } else if (typeof value === 'number' || typeof value === 'bigint') {
      values.push(String(value));
    } else if (value && typeof value === 'object') {
      pending.push(...Object.values(value as Record<string, unknown>));
    }
  }

  return values;
}
