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
/** Groups written at once; more would only queue for the same connections. */
const MAX_IN_FLIGHT = 2;

/**
 * Groups concurrent single enqueues into one transaction and one send to Redis ("group
 * commit"): what arrives while earlier groups are being written waits and goes in the next one,
 * so under load each statement carries many rows, and alone a job waits for nothing.
 */
export class EnqueueBatcher {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(private readonly writeGroup: (jobs: ValidatedJob[]) => Promise<InsertOutcome>) {}

  /** Resolves with the job's row once its group committed (and was handed to Redis). */
  submit(job: ValidatedJob): Promise<JobEntity> {
    return new Promise<JobEntity>((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.waiting.length > 0) {
      const group = this.waiting.splice(0, MAX_GROUP);
      this.inFlight += 1;
      void this.write(group).finally(() => {
        this.inFlight -= 1;
        this.drain();
      });
    }
  }

  private async write(group: Waiting[]): Promise<void> {
    try {
      const { rows } = await this.writeGroup(group.map((waiting) => waiting.job));
      group.forEach((waiting, index) => waiting.resolve(rows[index]));
    } catch (error) {
      group.forEach((waiting) => waiting.reject(error));
    }
  }
}
