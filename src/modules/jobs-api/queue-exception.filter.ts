import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

import {
  JobValidationError,
  LedgerBehindError,
  LedgerUnavailableError,
  RedisUnavailableError,
} from '../queue';

type QueueError =
  JobValidationError | LedgerBehindError | LedgerUnavailableError | RedisUnavailableError;

/** The body of every 400 that names one field: Nest's usual shape plus `field` and `rule`. */
export interface FieldErrorBody {
  statusCode: 400;
  error: 'Bad Request';
  message: string[];
  field: string;
  rule: string;
}

export function fieldErrorBody(field: string, rule: string, message: string): FieldErrorBody {
  return { statusCode: 400, error: 'Bad Request', message: [message], field, rule };
}

/**
 * Turns QueueService's errors into HTTP answers: a broken rule is the client's 400, an
 * unreachable or lagging ledger is a 503 the client may retry. Every other error is left to
 * Nest, which already answers a malformed JSON body with 400 and an oversized one with 413.
 */
@Catch(JobValidationError, LedgerBehindError, LedgerUnavailableError, RedisUnavailableError)
export class QueueExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(QueueExceptionFilter.name);

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: QueueError, host: ArgumentsHost): void {
    const response: unknown = host.switchToHttp().getResponse();
    const { httpAdapter } = this.adapterHost;

    if (error instanceof JobValidationError) {
      httpAdapter.reply(response, fieldErrorBody(error.field, error.rule, error.message), 400);

      return;
    }

    if (error instanceof LedgerBehindError) {
      // Expected under overload and answered on every request meanwhile: a warning, not an error.
      this.logger.warn({ message: error.message, queue: error.queue });
    } else {
      this.logger.error({ message: error.message, cause: describeCause(error.cause) });
    }
    // Every 503 here is passing: the ledger, Redis or the database is expected back.
    httpAdapter.setHeader(response, 'Retry-After', '1');
    httpAdapter.reply(
      response,
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message: error.message,
      },
      HttpStatus.SERVICE_UNAVAILABLE,
    );
  }
}

function describeCause(cause: unknown): string {
  return cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
}
