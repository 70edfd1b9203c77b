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
 * Reads every queue's share of a batch in one atomic call. KEYS are pairs (event stream, epoch
 * marker); ARGV[1] is the most entries to read per queue, ARGV[1 + q] queue q's cursor. For each
 * queue it returns { marker, stream exists (0/1), length, entries added, last generated id,
 * entries read, id of the last entry read, kept events }, each kept event as four strings: id,
 * event, job id, and the one field the ledger needs of it (`prev` of a retry's `waiting`,
 * `delay`, `failedReason`; empty otherwise).
 *
 * About half of a job's entries (`added`, a first `waiting`) never change a row, and the others
 * carry fields the ledger never reads (a completed job's return value among them); `XINFO`'s
 * reply holds whole entries. Filtering here spared the projector most of its reply decoding,
 * its largest CPU cost, and one call per batch replaced three commands per queue. The fields
 * are picked out in one pass, without a table per entry: that table cost Redis about 1.5 us per
 * job (four entries) of the 10 the script took, most of the rest being XRANGE's own reply.
 */
const READ_BATCH_SCRIPT = `
local reply = {}
for q = 1, #KEYS / 2 do
  local streamKey = KEYS[2 * q - 1]
  local marker = redis.call('GET', KEYS[2 * q])
  local info = redis.pcall('XINFO', 'STREAM', streamKey)
  local exists, length, added, lastGenerated = 0, 0, 0, '0-0'
  if type(info) == 'table' and not info.err then
    exists = 1
    for index = 1, #info, 2 do
      local name = info[index]
      if name == 'length' then length = info[index + 1]
      elseif name == 'entries-added' then added = info[index + 1]
      elseif name == 'last-generated-id' then lastGenerated = info[index + 1]
      end
    end
  end
  local entries = {}
  if exists == 1 then
    entries = redis.call('XRANGE', streamKey, '(' .. ARGV[q + 1], '+', 'COUNT', ARGV[1])
  end
  local kept = {}
  local keptCount = 0
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    local event, jobId, prev, delay, failedReason
    for index = 1, #fields, 2 do
      local name = fields[index]
      if name == 'event' then event = fields[index + 1]
      elseif name == 'jobId' then jobId = fields[index + 1]
      elseif name == 'prev' then prev = fields[index + 1]
      elseif name == 'delay' then delay = fields[index + 1]
      elseif name == 'failedReason' then failedReason = fields[index + 1]
      end
    end
    local detail
    if event == 'waiting' then
      if prev == 'active' then detail = 'active' end
    elseif event == 'delayed' then
      detail = delay or ''
    elseif event == 'failed' then
      detail = failedReason or ''
    elseif event == 'active' or event == 'completed' or event == 'stalled' then
      detail = ''
    end
    if detail then
      kept[keptCount + 1] = entry[1]
      kept[keptCount + 2] = event
      kept[keptCount + 3] = jobId or ''
      kept[keptCount + 4] = detail
      keptCount = keptCount + 4
    end
  end
  local last = entries[#entries]
  reply[q] = { marker, exists, length, added, lastGenerated, #entries, last and last[1] or '', kept }
end
return reply
`;

type ReadBatch = (
  numberOfKeys: number,
  ...keysThenArgs: Array<string | number>
) => Promise<unknown>;

type QueueReply = [
  marker: string | null,
  exists: number,
  length: number,
  entriesAdded: number,
  lastGeneratedId: string,
  entriesRead: number,
  lastEntryId: string,
  kept: string[],
];

/** Reads BullMQ's per-queue event streams from the ledger's cursors. */
export class EventStreamReader {
  constructor(
    private readonly redis: Redis,
    private readonly blocking: Redis,
  ) {
    redis.defineCommand('ledgerReadBatch', { lua: READ_BATCH_SCRIPT });
  }

  /**
   * Reads up to `count` events per queue after each cursor. The stream's counters and the epoch
   * marker are read in the same script, so a gap or a Redis reset is judged on exactly what was
   * read.
   */
  async read(positions: StreamPosition[], count: number): Promise<StreamRead[]> {
    if (positions.length === 0) {
      return [];
    }

    const readBatch = (this.redis as unknown as { ledgerReadBatch: ReadBatch }).ledgerReadBatch;
    const keys = positions.flatMap((position) => [position.key, position.markerKey]);
    const cursors = positions.map((position) => position.cursor);
    const replies = (await readBatch.call(
      this.redis,
      keys.length,
      ...keys,
      count,
      ...cursors,
    )) as QueueReply[];

    return positions.map((position, index) => toStreamRead(position, replies[index]));
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

function toStreamRead(position: StreamPosition, reply: QueueReply): StreamRead {
  const [marker, exists, length, entriesAdded, lastGeneratedId, entriesRead, lastEntryId, kept] =
    reply;

  return {
    position,
    marker: marker ?? null,
    // A stream that does not exist: no job has been added since Redis began.
    stream: {
      exists: Number(exists) === 1,
      length: Number(length),
      entriesAdded: Number(entriesAdded),
      lastGeneratedId,
    },
    events: parseCompactEvents(position.queue, kept),
    entriesRead: Number(entriesRead),
    lastEntryId: lastEntryId === '' ? undefined : lastEntryId,
  };
}
