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
