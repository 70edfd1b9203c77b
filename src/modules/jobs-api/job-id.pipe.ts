import { ArgumentMetadata, BadRequestException, Injectable, PipeTransform } from '@nestjs/common';

import { fieldErrorBody } from './queue-exception.filter';

const RULE = 'expected a positive integer job id';

/**
 * Parses a job id route parameter. Ledger ids are positive and stay below 2^53, so anything
 * else can name no job and is refused before the database is asked.
 */
@Injectable()
export class JobIdPipe implements PipeTransform<string, number> {
  transform(value: string, metadata: ArgumentMetadata): number {
    const field = metadata.data ?? 'id';
    const id = Number(value);

    if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(id)) {
      const got = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
      throw new BadRequestException(fieldErrorBody(field, RULE, `${field}: ${RULE}, got ${got}`));
    }

    return id;
  }
}
