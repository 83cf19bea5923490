/**
 * Turns event data into the text a transport carries and back. The default
 * is {@link JsonCodec}; supply your own through the `codec` option. A codec
 * must throw {@link SerializationError} for data it refuses, and `decode`
 * must throw for malformed text (the bus counts and logs it).
 * @publicApi
 */
export interface Codec {
  /** Encode data; `undefined` (no data) must round-trip. */
  encode(data: unknown): string;
  decode(payload: string): unknown;
}
