import { JobEntity } from '../../entities';
import { ValidatedJob } from './enqueue-request';
import { InsertOutcome } from './job-ledger.repository';

interface Waiting {
  job: ValidatedJob;
  resolve: (row: JobEntity) => void;
  reject: (error: unknown) => void;
}

/** Jobs per group; keeps a group's INSERT well inside the statement limits. */
const MAX_GROUP = 500;

/** Longest a small group waits for a send: bounds the wait while a send hangs (Redis gone). */
const HOLD_MAX_MS = 20;

/**
 * Groups concurrent single enqueues into one transaction and one send to Redis ("group
 * commit"). One group is written at a time, and what arrives meanwhile forms the next group,
 * whose write starts as soon as the previous commit is done, while that group is being sent.
 * Alone, a job waits for nothing; under load, each statement carries many rows. (Two writes at
 * once made a pattern of one large group and a stream of one-job groups, each paying a whole
 * transaction and a whole send.)
 *
 * A group no larger than the groups being sent waits until one of those sends is over (at most
 * `HOLD_MAX_MS`): callers that enqueue one job after another come back together when their send
 * is over, and starting a write for the few that came back early made every other group a
 * one-job transaction that took as long as a full one.
 */
export class EnqueueBatcher {
  private readonly waiting: Waiting[] = [];
  private writing = false;
  /** Jobs of the groups being sent: their callers may be about to enqueue again. */
  private sending = 0;
  private holdTimer: NodeJS.Timeout | undefined;

  /**
   * @param writeGroup - writes the jobs' rows in one transaction
   * @param sendGroup - sends a committed group to Redis; must not throw (the rows are committed
   *   and the ledger's dispatcher sends whatever this could not)
   */
  constructor(
    private readonly writeGroup: (jobs: ValidatedJob[]) => Promise<InsertOutcome>,
    private readonly sendGroup: (outcome: InsertOutcome) => Promise<unknown>,
  ) {}

  /** Resolves with the job's row once its group committed and was handed to Redis. */
  submit(job: ValidatedJob): Promise<JobEntity> {
    return new Promise<JobEntity>((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.writeNextGroup();
    });
  }

  private writeNextGroup(): void {
    if (this.writing || this.waiting.length === 0) {
      return;
    }

    if (this.waiting.length <= this.sending) {
      this.holdTimer ??= setTimeout(() => this.endHold(), HOLD_MAX_MS);

      return;
    }

    this.startWrite();
  }

  /** The hold has lasted long enough: what waits is written, however small. */
  private endHold(): void {
    this.holdTimer = undefined;
    if (!this.writing && this.waiting.length > 0) {
      this.startWrite();
    }
  }

  private startWrite(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const group = this.waiting.splice(0, MAX_GROUP);
    this.writing = true;
    void this.writeThenSend(group);
  }

  private async writeThenSend(group: Waiting[]): Promise<void> {
    let outcome: InsertOutcome;
    try {
      outcome = await this.writeGroup(group.map((waiting) => waiting.job));
      this.sending += group.length;
    } catch (error) {
      group.forEach((waiting) => waiting.reject(error));

      return;
    } finally {
      this.writing = false;
      this.writeNextGroup();
    }

    try {
      await this.sendGroup(outcome);
      group.forEach((waiting, index) => waiting.resolve(outcome.rows[index]));
    } catch (error) {
      group.forEach((waiting) => waiting.reject(error));
    } finally {
      // Runs after the callers' own continuations: those that enqueue again are waiting by then.
      setImmediate(() => {
        this.sending -= group.length;
        this.writeNextGroup();
      });
    }
  }
}
