import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { buildDataSourceOptions } from './data-source-options';

/** The TypeORM connection to the ledger database, configured from `APP_CONFIG`. */
@Module({})
export class DatabaseModule {
  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => buildDataSourceOptions(config.database),
        }),
      ],
      exports: [TypeOrmModule],
    };
  }
}
