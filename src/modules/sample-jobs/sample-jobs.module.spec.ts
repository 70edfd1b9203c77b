import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';

import { HandlerRegistry } from '../worker/handler-registry.service';
import { SAMPLE_JOB_TYPES } from './sample-job-types';
import { SAMPLE_JOB } from './sample-jobs.constants';
import { SampleJobsModule } from './sample-jobs.module';

describe('SampleJobsModule', () => {
  it('provides exactly one handler for every sample job type in the catalogue', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule, SampleJobsModule],
      providers: [HandlerRegistry],
    }).compile();
    await moduleRef.init();
    const jobTypes = SAMPLE_JOB_TYPES.map((definition) => definition.name);

    expect(() => moduleRef.get(HandlerRegistry).assertExactlyOneHandler(jobTypes)).not.toThrow();
    expect(new Set(jobTypes)).toEqual(new Set(Object.values(SAMPLE_JOB)));

    await moduleRef.close();
  });
});
