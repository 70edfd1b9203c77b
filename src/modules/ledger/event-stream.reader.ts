import Redis from 'ioredis';

import { parseCompactEvents, parseStreamEntry, QueueEvent, RawStreamEntry } from './queue-event';

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
  /** The events that can change the ledger (see the read script), in stream order. */
  events: QueueEvent[];
  /** How many stream entries were read, the events above and the ones left out. */
  entriesRead: number;
  /** The id of the last entry read, kept or not. */
  lastEntryId: string | undefined;
  stream: StreamSnapshot;
  marker: string | null;
}

/**
 * Reads up to ARGV[2] entries after ARGV[1] and returns { entries read, last id, kept events },
 * each kept event as four strings: id, event, job id, and the one field the ledger needs of it
 * (`prev` of a retry's `waiting`, `delay`, `failedReason`; empty otherwise). About half of a
 * job's entries (`added`, a first `waiting`) never change a row, and the others carry fields
 * the ledger never reads (a completed job's return value among them): filtering here spared
 * the projector most of its reply decoding, its largest CPU cost.
 */
const READ_EVENTS_SCRIPT = `
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local kept = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local values = {}
  for index = 1, #fields, 2 do
    values[fields[index]] = fields[index + 1]
  end
  local event = values['event']
  local detail
  if event == 'waiting' then
    if values['prev'] == 'active' then detail = 'active' end
  elseif event == 'delayed' then
    detail = values['delay'] or ''
  elseif event == 'failed' then
    detail = values['failedReason'] or ''
  elseif event == 'active' or event == 'completed' or event == 'stalled' then
    detail = ''
  end
  if detail then
    kept[#kept + 1] = entry[1]
    kept[#kept + 1] = event
    kept[#kept + 1] = values['jobId'] or ''
    kept[#kept + 1] = detail
  end
end
local last = entries[#entries]
return { #entries, last and last[1] or '', kept }
`;

type ReadEvents = (key: string, cursor: string, count: number) => unknown;

type ExecResult = Array<[Error | null, unknown]>;

/** Reads BullMQ's per-queue event streams from the ledger's cursors. */
export class EventStreamReader {
  constructor(
    private readonly redis: Redis,
    private readonly blocking: Redis,
  ) {
    redis.defineCommand('ledgerReadEvents', { numberOfKeys: 1, lua: READ_EVENTS_SCRIPT });
  }

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
      (multi as unknown as { ledgerReadEvents: ReadEvents }).ledgerReadEvents(
        position.key,
        position.cursor,
        count,
      );
    }

    const results = ((await multi.exec()) ?? []) as ExecResult;

    return positions.map((position, index) => {
      const [markerResult, infoResult, readResult] = results.slice(index * 3, index * 3 + 3);

      return {
        position,
        marker: (markerResult[1] as string | null) ?? null,
        stream: parseStreamInfo(infoResult),
        ...parseRead(position.queue, readResult),
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

function parseRead(
  queue: string,
  [error, reply]: [Error | null, unknown],
): Pick<StreamRead, 'events' | 'entriesRead' | 'lastEntryId'> {
  if (error) {
    throw error;
  }

  const [entriesRead, lastEntryId, kept] = reply as [number, string, string[]];

  return {
    events: parseCompactEvents(queue, kept),
    entriesRead: Number(entriesRead),
    lastEntryId: lastEntryId === '' ? undefined : lastEntryId,
  };
}

function readString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
