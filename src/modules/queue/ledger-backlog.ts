import Redis from 'ioredis';

import { eventsStreamKey, ledgerProgressKey } from './queue.constants';

/**
 * For each queue (pairs of KEYS: event stream, ledger progress key) returns the ledger's
 * progress (empty if unknown) and the stream's `entries-added` (-1 if there is no stream).
 */
const READ_BACKLOG_SCRIPT = `
local reply = {}
for q = 1, #KEYS / 2 do
  local read = redis.call('GET', KEYS[2 * q])
  local added = -1
  if read then
    local info = redis.pcall('XINFO', 'STREAM', KEYS[2 * q - 1])
    if type(info) == 'table' and not info.err then
      for index = 1, #info, 2 do
        if info[index] == 'entries-added' then added = info[index + 1] end
      end
    end
  end
  reply[q] = { read or '', added }
end
return reply
`;

type ReadBacklog = (numberOfKeys: number, ...keys: string[]) => Promise<unknown>;

/**
 * How many entries of each queue's event stream the ledger has not read yet, in one call.
 * `undefined` where that is unknown: no ledger has said how far it read, or Redis lost the key
 * or the stream.
 */
export async function readLedgerBacklogs(
  redis: Redis,
  prefix: string,
  queues: string[],
): Promise<Map<string, number | undefined>> {
  const commands = redis as unknown as { readLedgerBacklog?: ReadBacklog };
  if (!commands.readLedgerBacklog) {
    redis.defineCommand('readLedgerBacklog', { lua: READ_BACKLOG_SCRIPT });
  }

  const keys = queues.flatMap((queue) => [
    eventsStreamKey(prefix, queue),
    ledgerProgressKey(prefix, queue),
  ]);
  const read = commands.readLedgerBacklog!;
  const reply = (await read.call(redis, keys.length, ...keys)) as Array<[string, number]>;

  return new Map(queues.map((queue, index) => [queue, unreadEntries(reply[index])]));
}

function unreadEntries(reply: [string, number] | undefined): number | undefined {
  if (!reply || reply[0] === '' || Number(reply[1]) < 0) {
    return undefined;
  }

  return Math.max(0, Number(reply[1]) - Number(reply[0]));
}
