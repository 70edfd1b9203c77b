import { ValueTransformer } from 'typeorm';

/**
 * BIGINT ids arrive as strings from the driver. Ids stay far below 2^53 for centuries at any
 * realistic rate, so they are handed to JavaScript as numbers; anything larger is refused
 * rather than silently rounded.
 */
export const bigintAsNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null): number | null => {
    if (value === null || value === undefined) {
      return null;
    }

    const asNumber = Number(value);
    if (!Number.isSafeInteger(asNumber)) {
      throw new RangeError(`BIGINT ${String(value)} is beyond Number.MAX_SAFE_INTEGER`);
    }

    return asNumber;
  },
};
