/** One entry of a BullMQ queue's event stream. */
export interface QueueEvent {
  /** The stream id; also the time of the event. */
  id: string;
  queue: string;
  event: string;
  /** The BullMQ job id, when the event is about one job. */
  jobId: string | undefined;
  fields: Record<string, string>;
}

export type RawStreamEntry = [id: string, fields: string[]];

export function parseStreamEntry(queue: string, [id, flat]: RawStreamEntry): QueueEvent {
  const fields: Record<string, string> = {};
  for (let index = 0; index + 1 < flat.length; index += 2) {
    fields[flat[index]] = flat[index + 1];
  }

  return { id, queue, event: fields.event ?? '', jobId: fields.jobId, fields };
}

/** The field a kept event's detail stands for, by event name. */
const DETAIL_FIELD: Record<string, string> = {
  waiting: 'prev',
  delayed: 'delay',
  failed: 'failedReason',
};

/**
 * Events as the read script returns them: four strings each (id, event, job id, detail), the
 * detail being the one field the ledger reads of that event (see `DETAIL_FIELD`).
 */
export function parseCompactEvents(queue: string, flat: string[]): QueueEvent[] {
  const events: QueueEvent[] = [];

  for (let index = 0; index + 3 < flat.length; index += 4) {
    const [id, event, jobId, detail] = flat.slice(index, index + 4);
    const fields: Record<string, string> = { event, jobId };
    const detailField = DETAIL_FIELD[event];
    if (detailField && detail !== '') {
      fields[detailField] = detail;
    }

    events.push({ id, queue, event, jobId: jobId === '' ? undefined : jobId, fields });
  }

  return events;
}
