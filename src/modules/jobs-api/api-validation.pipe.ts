import { BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

/**
 * The API's ValidationPipe: unknown fields are refused rather than dropped, and every message
 * names the field by its full path in the same form QueueService uses (`jobs[1].priority`), the
 * rule, and the value it got.
 */
export function createApiValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => new BadRequestException(describeValidationErrors(errors)),
  });
}

/** One message per broken rule, depth first, each naming its field by its full path. */
export function describeValidationErrors(errors: ValidationError[], parentPath = ''): string[] {
  return errors.flatMap((error) => {
    const path = joinPath(parentPath, String(error.property));
    const own = Object.entries(error.constraints ?? {}).map(([rule, message]) =>
      withPath(rule, message, error, path),
    );

    return [...own, ...describeValidationErrors(error.children ?? [], path)];
  });
}

function joinPath(parentPath: string, property: string): string {
  if (!parentPath) {
    return property;
  }

  return /^\d+$/.test(property) ? `${parentPath}[${property}]` : `${parentPath}.${property}`;
}

function withPath(rule: string, message: string, error: ValidationError, path: string): string {
  // class-validator starts its messages with the bare property name; a nested field needs more.
  const named =
    rule === 'whitelistValidation'
      ? `property ${path} should not exist`
      : message.startsWith(`${String(error.property)} `)
        ? `${path}${message.slice(String(error.property).length)}`
        : message;

  // Only a leaf error keeps its value: Nest strips the values of parents.
  return rule === 'whitelistValidation' || !('value' in error)
    ? named
    : `${named}, got ${describe(error.value)}`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }

  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    return String(value);
  }

  if (value === undefined) {
    return 'nothing';
  }

  return Array.isArray(value) ? 'an array' : 'an object';
}
