require('reflect-metadata');
const { NestFactory } = require('@nestjs/core');
const { AppModule } = require('./dist/src/app.module');
const { loadAppConfig } = require('./dist/src/modules/config/app-config');
const { prepareDatabase } = require('./dist/src/modules/database/prepare-database');
const { QueueService } = require('./dist/src/modules/queue');
(async () => {
  const env = { REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'mysql://root@127.0.0.1:3306/prof_single', QUEUE_PREFIX: 'profsingle'+Date.now(), DIAGNOSTIC_JOBS: 'true', RUN_MIGRATIONS: 'false', LOG_LEVEL: 'error', ROLES: 'api' };
  await prepareDatabase(loadAppConfig(env));
  const app = await NestFactory.createApplicationContext(AppModule.forRoles({ config: loadAppConfig(env) }), { logger: ['error'] });
  const queue = app.get(QueueService, { strict: false });
  const inFlight = 50;
  const b = queue.batcher; const stats = { w: [], s: [], g: [] };
  const ow = b.writeGroup, os = b.sendGroup;
  b.writeGroup = async (jobs) => { const t = performance.now(); try { return await ow(jobs); } finally { stats.w.push(performance.now() - t); stats.g.push(jobs.length); } };
  b.sendGroup = async (o) => { const t = performance.now(); try { return await os(o); } finally { stats.s.push(performance.now() - t); } };
  const avg = (a) => (a.reduce((x, y) => x + y, 0) / a.length).toFixed(2);
  setInterval(() => {}, 1000).unref();
  process.on('beforeExit', () => {});
  globalThis.report = () => { console.log(`groups ${stats.g.length} avg size ${avg(stats.g)} write ${avg(stats.w)} ms send ${avg(stats.s)} ms`); stats.w = []; stats.s = []; stats.g = []; };
  for (const N of (process.env.NS ?? '5000,2000,2000,10000').split(',').map(Number)) {
    let next = 0; const t0 = performance.now(); const c0 = process.cpuUsage();
    await Promise.all(Array.from({ length: inFlight }, async () => { while (next++ < N) await queue.enqueue('diag_noop_fifo', { n: 1 }, {}); }));
    const ms = performance.now() - t0; const cpu = process.cpuUsage(c0);
    console.log(`N=${N}: ${Math.round(N / ms * 1000)} jobs/s, producer CPU ${((cpu.user + cpu.system) / N).toFixed(0)} us/job`); report();
  }
  await app.close();
})();
