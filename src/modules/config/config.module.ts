import { DynamicModule, Global, Module } from '@nestjs/common';

import { AppConfig } from './app-config';
import { APP_CONFIG } from './config.constants';

/** Makes the validated configuration injectable everywhere as `APP_CONFIG`. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: APP_CONFIG, useValue: config }],
      exports: [APP_CONFIG],
    };
  }
}
