import { ChildProcess, fork } from 'node:child_process';

import {
  HandlerOutcome,
  isAnswerMessage,
  isReadyMessage,
  QuarantineRunMessage,
} from './quarantine.protocol';
import { ApplicationEntry } from './worker-module-options.interface';

export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Phase = 'starting' | 'running';

/** Why the quarantine process gave no answer. */
export type QuarantineFailure =
  | { kind: 'ended'; phase: Phase; end: ProcessEnd }
  | { kind: 'timed-out'; phase: Phase; timeoutMs: number };

/** The quarantine process ended or hung before it answered; the message says which. */
export class QuarantineProcessError extends Error {
  constructor(readonly failure: QuarantineFailure) {
    super(describeFailure(failure));
    this.name = 'QuarantineProcessError';
  }
}

type Outcome<T> = { value: T } | { end: ProcessEnd } | { timedOut: true };

/**
 * The worker's handle on one child process that runs quarantined jobs, one at a time. A child
 * that hangs past its deadline is killed; whatever ends it, the job in hand gets a
 * QuarantineProcessError rather than an answer.
 */
export class QuarantineProcess {
  private exit: ProcessEnd | undefined;
  private readonly ended: Promise<ProcessEnd>;
  private readonly ready: Promise<void>;
  private awaiting: { requestId: number; resolve: (outcome: HandlerOutcome) => void } | undefined;
  private lastRequestId = 0;
  private retired = false;

  private constructor(private readonly child: ChildProcess) {
    this.ended = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve((this.exit = { code, signal })));
    });
    this.ready = new Promise((resolve) => {
      child.on('message', (message) => (isReadyMessage(message) ? resolve() : this.take(message)));
    });
    // A failed spawn or send is followed by an exit, or leaves a child we kill: both end it.
    child.on('error', () => this.kill());
  }

  /** Forks the application in quarantine mode and resolves once it can take a job. */
  static async start(
    entry: ApplicationEntry,
    env: NodeJS.ProcessEnv,
    timeoutMs: number,
  ): Promise<QuarantineProcess> {
    const child = fork(entry.script, [], { execArgv: entry.execArgv, env, serialization: 'json' });
    const quarantine = new QuarantineProcess(child);
    try {
      await quarantine.within(quarantine.ready, 'starting', timeoutMs);
    } catch (error) {
      quarantine.kill();
      throw error;
    }

    return quarantine;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether it can take a job: not ended, and not asked to end. */
  get alive(): boolean {
    return this.exit === undefined && !this.retired;
  }

  /** Has the child run one job's handler; rejects with QuarantineProcessError if it cannot. */
  async run(job: Omit<QuarantineRunMessage, 'kind' | 'requestId'>, timeoutMs: number) {
    const requestId = ++this.lastRequestId;
    const answer = new Promise<HandlerOutcome>((resolve) => {
      this.awaiting = { requestId, resolve };
    });
    const message: QuarantineRunMessage = { kind: 'run', requestId, ...job };
    this.child.send(message, (error) => error && this.kill());

    try {
      return await this.within(answer, 'running', timeoutMs);
    } finally {
      this.awaiting = undefined;
    }
  }

  kill(): void {
    if (this.exit === undefined) {
      this.child.kill('SIGKILL');
    }
  }

  /** Closes the IPC channel between jobs; the child exits when it sees the channel close. */
  retire(): void {
    if (this.alive) {
      this.retired = true;
      this.child.disconnect();
    }
  }

  private take(message: unknown): void {
    if (isAnswerMessage(message) && message.requestId === this.awaiting?.requestId) {
      this.awaiting.resolve(message.outcome);
    }
  }

  private async within<T>(work: Promise<T>, phase: Phase, timeoutMs: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Outcome<T>>((resolve) => {
      timer = setTimeout(() => resolve({ timedOut: true }), timeoutMs);
    });

    const outcome = await Promise.race<Outcome<T>>([
      work.then((value) => ({ value })),
      this.ended.then((end) => ({ end })),
      deadline,
    ]).finally(() => clearTimeout(timer));

    if ('value' in outcome) {
      return outcome.value;
    }

    if ('end' in outcome) {
      throw new QuarantineProcessError({ kind: 'ended', phase, end: outcome.end });
    }

    this.kill();
    throw new QuarantineProcessError({ kind: 'timed-out', phase, timeoutMs });
  }
}

function describeFailure(failure: QuarantineFailure): string {
  if (failure.kind === 'ended') {
    const how = failure.end.signal ?? `exit code ${failure.end.code}`;

    return failure.phase === 'running'
      ? `the handler's process ended with ${how} while running this job in quarantine`
      : `the quarantine process ended with ${how} before it could run this job`;
  }

  return failure.phase === 'running'
    ? `the handler did not finish within ${failure.timeoutMs} ms in quarantine; its process was killed`
    : `the quarantine process did not start within ${failure.timeoutMs} ms; it was killed`;
}
