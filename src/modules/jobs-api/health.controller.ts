import { Controller, Get } from '@nestjs/common';

@Controller('health')
export class HealthController {
  /**
   * Liveness: answers as long as the process serves HTTP. It checks neither Redis nor the
   * database, so that an orchestrator never restarts the API for a dependency's outage.
   *
   * @returns `{ status: 'ok' }` with 200
   */
  @Get()
  check(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
