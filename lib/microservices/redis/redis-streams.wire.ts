/** The entry field holding the JSON of a serialized Nest packet. */
export const PACKET_FIELD = 'packet';
/** Reply streams are `<prefix>reply:<client id>`. */
export const REPLY_STREAM_INFIX = 'reply:';

/**
 * The wire value of an entry: the parsed `packet` field, or, for entries
 * written by someone else, the fields as an object (the deserializer then
 * hands them to the handler as its data). Throws on a `packet` field that
 * is not JSON.
 */
export function parseEntry(fields: Readonly<Record<string, string>>): unknown {
  const json = fields[PACKET_FIELD];
  if (json === undefined) return { ...fields };
  return JSON.parse(json) as unknown;
}
