import { Body, Controller, Get, NotFoundException, Param, Post } from '@nestjs/common';

import { JobEntity } from '../../entities';
import { QueueService } from '../queue';
import { EnqueueBatchDto, EnqueueJobDto, toEnqueueRequest } from './dto';
import { JobIdPipe } from './job-id.pipe';
import { JobHistoryView, JobView, toJobHistoryView, toJobView } from './job-view';

/** The HTTP surface of the queue: enqueue jobs and read their ledger rows and history. */
@Controller('jobs')
export class JobsController {
  constructor(private readonly queue: QueueService) {}

  /**
   * Enqueues one job. The ledger row is committed before the job is sent to Redis, so a 201
   * means the job is on record and will run even if Redis was briefly unreachable.
   *
   * @param body - `{ jobType, payload, priority?, attempts?, backoff?, delayMs?, runAt? }`
   * @returns 201 with the job, status `pending`
   * @throws 400 naming the offending field and rule; nothing is written
   * @throws 503 when the ledger cannot be written; nothing is written
   */
  @Post()
  async enqueue(@Body() body: EnqueueJobDto): Promise<JobView> {
    const { jobType, payload, ...options } = toEnqueueRequest(body);

    return toJobView(await this.queue.enqueue(jobType, payload, options));
  }

  /**
   * Enqueues 1 to 1000 jobs in one transaction: all of them, or none.
   *
   * @param body - `{ jobs: [...] }`, each of the shape `POST /jobs` takes
   * @returns 201 with `{ jobs }` in request order
   * @throws 400 naming the offending `jobs[i].field`; nothing is written
   * @throws 503 when the ledger cannot be written; nothing is written
   */
  @Post('batch')
  async enqueueBatch(@Body() body: EnqueueBatchDto): Promise<{ jobs: JobView[] }> {
    const rows = await this.queue.enqueueMany(body.jobs.map(toEnqueueRequest));

    return { jobs: rows.map(toJobView) };
  }

  /**
   * Reads a job's ledger row.
   *
   * @param id - the job id, a positive integer
   * @returns 200 with the job
   * @throws 400 when `id` is not a positive integer; 404 when there is no such job
   * @throws 503 when the ledger cannot be read
   */
  @Get(':id')
  async get(@Param('id', JobIdPipe) id: number): Promise<JobView> {
    return toJobView(await this.requireJob(id));
  }

  /**
   * Reads every recorded status change of a job, oldest first. The first one is always the
   * enqueue (`null` to `pending`).
   *
   * @param id - the job id, a positive integer
   * @returns 200 with `{ jobId, transitions }`
   * @throws 400 when `id` is not a positive integer; 404 when there is no such job
   * @throws 503 when the ledger cannot be read
   */
  @Get(':id/history')
  async history(@Param('id', JobIdPipe) id: number): Promise<JobHistoryView> {
    await this.requireJob(id);

    return toJobHistoryView(id, await this.queue.history(id));
  }

  private async requireJob(id: number): Promise<JobEntity> {
    const row = await this.queue.get(id);
    if (!row) {
      throw new NotFoundException(`job ${id} not found`);
    }

    return row;
  }
}
