import {
  ArgumentMetadata,
  BadRequestException,
  Injectable,
  ValidationError,
  ValidationPipe,
} from '@nestjs/common';

import { MAX_JSON_DEPTH, RESERVED_JSON_KEYS } from './jobs-api.constants';

/**
 * The API's ValidationPipe. Unknown fields are refused rather than dropped, and every message
 * names the field by its full path in the form QueueService uses (`jobs[1].priority`), the rule,
 * and the value it got.
 *
 * It validates without converting: the body reaches the controller as plain JSON, and route
 * parameters reach their own pipes as the strings they were (with `transform`, a `number`
 * parameter would arrive as `Number('1e3')`, too late to refuse it).
 */
@Injectable()
export class ApiValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: false,
      exceptionFactory: (errors) => new BadRequestException(describeValidationErrors(errors)),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body') {
      // Before the parent runs: it would silently delete reserved keys and overflow the stack on
      // deep nesting.
      assertStorableJson(value);
    }

    return super.transform(value, metadata);
  }
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

interface JsonNode {
  value: object;
  depth: number;
  key?: string;
  parent?: JsonNode;
}

/** Refuses a body that is an array, nests too deeply, or holds a reserved key anywhere. */
function assertStorableJson(body: unknown): void {
  if (Array.isArray(body)) {
    throw new BadRequestException(['body must be a JSON object, got an array']);
  }

  if (body === null || typeof body !== 'object') {
    return;
  }

  // An explicit stack, not recursion: the point is to survive the nesting that recursion cannot.
  const stack: JsonNode[] = [{ value: body, depth: 0 }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    if (node.depth >= MAX_JSON_DEPTH) {
      throw new BadRequestException([
        `${pathOf(node)} must be JSON nested at most ${MAX_JSON_DEPTH} levels deep`,
      ]);
    }

    for (const [key, child] of childrenOf(node.value)) {
      const childNode = { value: child as object, depth: node.depth + 1, key, parent: node };
      if (!Array.isArray(node.value) && RESERVED_JSON_KEYS.has(key)) {
        throw new BadRequestException([
          `property ${pathOf(childNode)} is refused: keys named ${[...RESERVED_JSON_KEYS].join(', ')} are reserved`,
        ]);
      }

      if (child !== null && typeof child === 'object') {
        stack.push(childNode);
      }
    }
  }
}

function* childrenOf(value: object): Iterable<[string, unknown]> {
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      yield [String(index), value[index]];
    }

    return;
  }

  for (const key of Object.keys(value)) {
    yield [key, (value as Record<string, unknown>)[key]];
  }
}

function pathOf(node: JsonNode): string {
  const keys: string[] = [];
  for (
    let current: JsonNode | undefined = node;
    current?.key !== undefined;
    current = current.parent
  ) {
    keys.unshift(current.key);
  }

  const path = keys.reduce(joinPath, '');

  return path.length > 120 ? `${path.slice(0, 120)}…` : path;
}

function joinPath(parentPath: string, property: string): string {
  if (!parentPath) {
    return property;
  }

  return /^\d+$/.test(property) ? `${parentPath}[${property}]` : `${parentPath}.${property}`;
}

function withPath(rule: string, message: string, error: ValidationError, path: string): string {
  // class-validator starts its messages with the bare property name; a nested field needs more.
  const property = String(error.property);
  const named =
    rule === 'whitelistValidation'
      ? `property ${path} should not exist`
      : message.startsWith(`${property} `)
        ? `${path}${message.slice(property.length)}`
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
