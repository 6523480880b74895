/**
 * Byte-exact comparison that stays fast for big buffers (vitest's deep equality walks them byte
 * by byte: 3 MiB took 12 s) and says where the first difference is.
 */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  if (a.equals(expected)) return;
  let at = 0;
  while (at < a.length && at < expected.length && a[at] === expected[at]) at++;
  throw new Error(`bytes differ at offset ${at} (got ${a.length} bytes, expected ${expected.length})`);
}
