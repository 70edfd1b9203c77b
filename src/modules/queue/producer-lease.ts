import Redis from 'ioredis';

import { eventsStreamKey, ledgerProgressKey } from './queue.constants';

/**
 * Grants stream entries to one producer process, per queue, atomically against the ledger's
 * backlog and what every other producer holds. Four KEYS per queue: the event stream, the
 * ledger's progress, the leases (process → entries held) and their expiry times.
 * ARGV: process id, lease time to live (ms), limit, then per queue: entries this process holds
 * (admitted or granted, not yet reported as in the stream), entries wanted, least grant.
 *
 * Reply per queue: { backlog, held by others, granted }, or { -1, 0, 0 } when the backlog is
 * unknown (no ledger has said how far it read, or there is no stream): then nothing is held.
 */
const LEASE_SCRIPT = `
local me, ttl, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local reply = {}
for q = 1, #KEYS / 4 do
  local stream, progress, leases, expiry = KEYS[4 * q - 3], KEYS[4 * q - 2], KEYS[4 * q - 1], KEYS[4 * q]
  local held = tonumber(ARGV[3 * q + 1])
  local wanted = tonumber(ARGV[3 * q + 2])
  local least = tonumber(ARGV[3 * q + 3])

  local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
  for _, process in ipairs(expired) do redis.call('HDEL', leases, process) end
  redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)

  local read = redis.call('GET', progress)
  local added = -1
  if read then
    local info = redis.pcall('XINFO', 'STREAM', stream)
    if type(info) == 'table' and not info.err then
      for index = 1, #info, 2 do
        if info[index] == 'entries-added' then added = tonumber(info[index + 1]) end
      end
    end
  end

  if added < 0 then
    redis.call('HDEL', leases, me)
    redis.call('ZREM', expiry, me)
    reply[q] = { -1, 0, 0 }
  else
    local backlog = math.max(0, added - tonumber(read))
    local others = 0
    local all = redis.call('HGETALL', leases)
    for index = 1, #all, 2 do
      if all[index] ~= me then others = others + tonumber(all[index + 1]) end
    end
    local room = limit - backlog - others - held
    local granted = 0
    if room > 0 then granted = math.min(wanted, math.max(room, least)) end
    if held + granted > 0 then
      redis.call('HSET', leases, me, held + granted)
      redis.call('ZADD', expiry, now + ttl, me)
      redis.call('PEXPIRE', leases, ttl)
      redis.call('PEXPIRE', expiry, ttl)
    else
      redis.call('HDEL', leases, me)
      redis.call('ZREM', expiry, me)
    end
    reply[q] = { backlog, others, granted }
  end
end
return reply
`;

/** What one process asks of one queue. */
export interface LeaseRequest {
  queue: string;
  /** Entries this process holds: its lease without what it now reports as in the stream. */
  held: number;
  wanted: number;
  /** Granted whenever there is any room at all, so that one call larger than the room passes. */
  least: number;
}

export type LeaseReply =
  { known: false } | { known: true; backlog: number; heldByOthers: number; granted: number };

type RunLease = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<unknown>;

export function producerLeasesKey(prefix: string, queue: string): string {
  return `${prefix}:${queue}:producer-leases`;
}

export function producerLeaseExpiryKey(prefix: string, queue: string): string {
  return `${prefix}:${queue}:producer-lease-expiry`;
}

/** Renews this process's leases on the given queues and asks for more entries, in one call. */
export async function renewProducerLeases(
  redis: Redis,
  prefix: string,
  process: { id: string; ttlMs: number; limit: number },
  requests: LeaseRequest[],
): Promise<Map<string, LeaseReply>> {
  const commands = redis as unknown as { renewProducerLease?: RunLease };
  if (!commands.renewProducerLease) {
    redis.defineCommand('renewProducerLease', { lua: LEASE_SCRIPT });
  }

  const keys = requests.flatMap(({ queue }) => [
    eventsStreamKey(prefix, queue),
    ledgerProgressKey(prefix, queue),
    producerLeasesKey(prefix, queue),
    producerLeaseExpiryKey(prefix, queue),
  ]);
  const args = requests.flatMap(({ held, wanted, least }) => [held, wanted, least]);
  const run = commands.renewProducerLease!;
  const reply = (await run.call(
    redis,
    keys.length,
    ...keys,
    process.id,
    process.ttlMs,
    process.limit,
    ...args,
  )) as Array<[number, number, number]>;

  return new Map(requests.map(({ queue }, index) => [queue, toLeaseReply(reply[index])]));
}

function toLeaseReply([backlog, heldByOthers, granted]: [number, number, number]): LeaseReply {
  return backlog < 0 ? { known: false } : { known: true, backlog, heldByOthers, granted };
}
