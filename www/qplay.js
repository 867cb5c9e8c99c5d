// Loads the wasm module once and shares it between components. Every number the page shows
// comes from here: there is no second implementation of the math in JavaScript.
import { loadBindings } from './threads.js';

let ready;
/** Resolves to the initialised wasm bindings (the module threads.js picks for the main thread). */
export function loadWasm() {
  ready ??= loadBindings();
  return ready;
}

/** Formats a number with up to `digits` significant digits, without trailing zeros. */
export function fmt(x, digits = 7) {
  if (typeof x !== 'number') return String(x);
  if (!Number.isFinite(x)) return x > 0 ? '∞' : x < 0 ? '−∞' : 'NaN';
  if (x === 0) return '0';
  const a = Math.abs(x);
  const s = a >= 1e6 || a < 1e-4 ? x.toExponential(digits - 1) : x.toPrecision(digits);
  return s.replace(/(\.\d*?)0+(e|$)/, '$1$2').replace(/\.(e|$)/, '$1').replace('-', '−');
}
