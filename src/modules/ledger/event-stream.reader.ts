import Redis from 'ioredis';

import { parseStreamEntry, QueueEvent, RawStreamEntry } from './queue-event';

/** Where the ledger stands in one queue's stream. */
export interface StreamPosition {
  queue: string;
  /** Key of the queue's event stream. */
  key: string;
  /** Key of the marker that proves Redis still holds the data this position refers to. */
  markerKey: string;
  cursor: string;
  entriesRead: number;
  epoch: string;
}

export interface StreamSnapshot {
  exists: boolean;
  length: number;
  entriesAdded: number;
  lastGeneratedId: string;
}

/** One queue's share of a batch, read atomically with the stream's state and the marker. */
export interface StreamRead {
  position: StreamPosition;
  events: QueueEvent[];
  stream: StreamSnapshot;
  marker: string | null;
}

type ExecResult = Array<[Error | null, unknown]>;

/** Reads BullMQ's per-queue event streams from the ledger's cursors. */
export class EventStreamReader {
  constructor(
    private readonly redis: Redis,
    private readonly blocking: Redis,
  ) {}

  /**
   * Reads up to `count` events per queue after each cursor. The stream's counters and the epoch
   * marker are read in the same MULTI, so a gap or a Redis reset is judged on exactly what was
   * read.
   */
  async read(positions: StreamPosition[], count: number): Promise<StreamRead[]> {
    const multi = this.redis.multi();
    for (const position of positions) {
      multi.get(position.markerKey);
      multi.call('XINFO', 'STREAM', position.key);
      multi.xread('COUNT', count, 'STREAMS', position.key, position.cursor);
    }

    const results = ((await multi.exec()) ?? []) as ExecResult;

    return positions.map((position, index) => {
      const [markerResult, infoResult, readResult] = results.slice(index * 3, index * 3 + 3);

      return {
        position,
        marker: (markerResult[1] as string | null) ?? null,
        stream: parseStreamInfo(infoResult),
        events: parseRead(position.queue, readResult),
      };
    });
  }

  /** The next event after `afterId`, if there is one yet. */
  async peekAfter(position: StreamPosition, afterId: string): Promise<QueueEvent | undefined> {
    const entries = (await this.redis.xrange(
      position.key,
      `(${afterId}`,
      '+',
      'COUNT',
      1,
    )) as RawStreamEntry[];

    return entries.length > 0 ? parseStreamEntry(position.queue, entries[0]) : undefined;
  }

  /** Blocks until some stream has an event after its cursor, or `blockMs` passes. */
  async waitForEvents(positions: StreamPosition[], blockMs: number): Promise<void> {
    if (positions.length === 0) {
      return;
    }

    await this.blocking.xread(
      'COUNT',
      1,
      'BLOCK',
      blockMs,
      'STREAMS',
      ...positions.map((position) => position.key),
      ...positions.map((position) => position.cursor),
    );
  }
}

function parseStreamInfo([error, reply]: [Error | null, unknown]): StreamSnapshot {
  if (error || !Array.isArray(reply)) {
    // XINFO fails on a key that does not exist: no job has been added since Redis began.
    return { exists: false, length: 0, entriesAdded: 0, lastGeneratedId: '0-0' };
  }

  const info = new Map<string, unknown>();
  for (let index = 0; index + 1 < reply.length; index += 2) {
    info.set(String(reply[index]), reply[index + 1]);
  }

  return {
    exists: true,
    length: Number(info.get('length') ?? 0),
    entriesAdded: Number(info.get('entries-added') ?? 0),
    lastGeneratedId: readString(info.get('last-generated-id')) ?? '0-0',
  };
}

function parseRead(queue: string, [error, reply]: [Error | null, unknown]): QueueEvent[] {
  if (error) {
    throw error;
  }

  if (!Array.isArray(reply) || reply.length === 0) {
    return [];
  }

  const [, entries] = reply[0] as [string, RawStreamEntry[]];

  return entries.map((entry) => parseStreamEntry(queue, entry));
}

function readString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
