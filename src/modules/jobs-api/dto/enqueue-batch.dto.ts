import { Type } from 'class-transformer';
import { IsArray, ValidateNested } from 'class-validator';

import { EnqueueJobDto } from './enqueue-job.dto';

/** Jobs accepted together: all of them, or none. */
export class EnqueueBatchDto {
  /** From 1 to 1000 jobs, each of the shape `POST /jobs` takes. */
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => EnqueueJobDto)
  jobs!: EnqueueJobDto[];
}
