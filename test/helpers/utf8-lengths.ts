/**
 * Values whose UTF-8 length has more decimal digits than their UTF-16
 * length, and ASCII values on either side of a power of ten: what a RESP
 * bulk string's length, made room for by characters and written in bytes,
 * must get right (the redis publisher's prepared commands).
 */
export const LENGTHS_ACROSS_POWERS_OF_TEN: readonly string[] = [
  'é'.repeat(5), // 5 characters, 10 bytes
  '日'.repeat(4), // 4 characters, 12 bytes
  '🎉'.repeat(3), // 6 UTF-16 units, 12 bytes
  'é'.repeat(50), // 50 characters, 100 bytes
  '€'.repeat(334), // 334 characters, 1002 bytes
  '€'.repeat(3334), // 3334 characters, 10002 bytes
  'a'.repeat(9),
  'a'.repeat(10),
  'a'.repeat(99),
  'a'.repeat(100),
];
