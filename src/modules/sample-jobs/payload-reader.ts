import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';

/**
 * Reads the fields of a job payload. A payload that breaks a rule can never succeed, so every
 * problem is an `UnrecoverableJobError` naming the field and the expected shape. A wrong value
 * is described by its kind only: payloads are never copied into logs or the ledger.
 */
export class PayloadReader {
  private readonly fields: Record<string, unknown>;

  constructor(payload: unknown) {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw invalidField('payload', 'an object', kindOf(payload));
    }

    this.fields = payload as Record<string, unknown>;
  }

  /** A string with at least one non-blank character. */
  string(name: string): string {
    const value = this.fields[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw invalidField(`payload.${name}`, 'a non-empty string', kindOf(value));
    }

    return value;
  }

  /** A string matching `rule`; `description` says in words what the rule wants. */
  matching(name: string, rule: RegExp, description: string): string {
    const value = this.fields[name];
    if (typeof value !== 'string' || !rule.test(value)) {
      throw invalidField(`payload.${name}`, description, kindOf(value));
    }

    return value;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T {
    const value = this.fields[name];
    if (typeof value !== 'string' || !allowed.includes(value as T)) {
      throw invalidField(`payload.${name}`, `one of ${allowed.join(', ')}`, kindOf(value));
    }

    return value as T;
  }

  /** An integer of at least `min`. */
  integer(name: string, min: number): number {
    const value = this.optionalInteger(name, min);
    if (value === undefined) {
      throw invalidField(`payload.${name}`, `an integer of at least ${min}`, kindOf(value));
    }

    return value;
  }

  /** An integer of at least `min`, or `undefined` when the field is absent. */
  optionalInteger(name: string, min: number): number | undefined {
    const value = this.fields[name];
    if (value === undefined) {
      return undefined;
    }

    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      const got = Number.isSafeInteger(value) ? `an integer below ${min}` : kindOf(value);
      throw invalidField(`payload.${name}`, `an integer of at least ${min}`, got);
    }

    return value;
  }
}

function invalidField(field: string, expected: string, got: string): UnrecoverableJobError {
  return new UnrecoverableJobError(`${field}: expected ${expected}, got ${got}`);
}

function kindOf(value: unknown): string {
  if (value === undefined) {
    return 'nothing (the field is missing)';
  }

  if (value === null || Array.isArray(value)) {
    return value === null ? 'null' : 'an array';
  }

  if (typeof value === 'string') {
    return value.trim() === '' ? 'a blank string' : 'a string of another form';
  }

  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'an integer' : 'a fractional number';
  }

  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
