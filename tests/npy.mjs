// .npy fixtures for the browser tests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** A little-endian float32, int8, uint8 or int16 .npy file (format 1.0): { shape, data }. */
export function readNpy(path) {
  const b = readFileSync(path);
  const len = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + len).toString('latin1');
  const descr = header.match(/'descr': '([^']*)'/)[1];
  const Type = { '<f4': Float32Array, '|i1': Int8Array, '|u1': Uint8Array, '<i2': Int16Array }[descr];
  assert.ok(Type, `${path}: dtype ${descr}`);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((d) => d.trim()).map(Number);
  const data = new Type(b.buffer.slice(b.byteOffset + 10 + len, b.byteOffset + b.byteLength));
  return { shape, data };
}
