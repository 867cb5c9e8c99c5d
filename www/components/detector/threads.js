// The detector's Threads setting (the CPU's threads in the worker: www/threads.js) and what the
// page says about them: the backend line, the timings, the report, `qplay-ready`.
//
// The setting is a number, or null for the default (min(hardware threads, 8)); it comes from the
// `threads` attribute (also later) or `settings.threads` (the link's `detector.threads`). A wasm thread pool
// cannot be resized, so a change starts a new worker and loads the model in use into it again.
import { MAX_THREADS, defaultThreads } from '../../threads.js';
import { shortName } from './model-source.js';

/** "1 thread", "4 threads". */
export const threadsText = (n) => `${n} thread${n === 1 ? '' : 's'}`;

/** A valid setting (1…64) from a number or string; null for the default or anything else. */
export function threadsValue(v) {
  const n = Number(v);
  return v !== null && v !== '' && Number.isInteger(n) && n >= 1 && n <= MAX_THREADS ? n : null;
}

/** Methods of <qplay-detector> (assigned to its prototype, with backend.js's). */
export const threadsMethods = {
  /** The threads asked for (the setting, or the `threads` attribute); null for the default. */
  threadsWanted() {
    return this.threadsSetting ?? null;
  },

  /** Fills the Threads picker (the default, then 1 to the hardware's threads) and listens to it. */
  wireThreads() {
    const pick = this.$('select[name=threads]');
    const hw = navigator.hardwareConcurrency || 1;
    const wanted = this.threadsWanted();
    const counts = [...new Set([...Array.from({ length: Math.min(hw, 16) }, (_, i) => i + 1), hw, ...(wanted ? [wanted] : [])])].sort((a, b) => a - b);
    pick.replaceChildren(new Option(`default (${defaultThreads()})`, ''), ...counts.map((n) => new Option(String(n), String(n))));
    pick.value = wanted ? String(wanted) : '';
    // Without cross-origin isolation there is one thread whatever the setting (the backend line says why).
    pick.disabled = !globalThis.crossOriginIsolated;
    pick.addEventListener('change', (e) => { this.setThreads(threadsValue(e.target.value)); this.changed(); });
  },

  /** Uses `n` threads (null: the default) from now on: a new worker, and the model in use loaded again into it. */
  setThreads(n) {
    n = threadsValue(n);
    const pick = this.$('select[name=threads]');
    if (pick && [...pick.options].some((o) => o.value === String(n ?? ''))) pick.value = String(n ?? '');
    if (n === this.threadsWanted()) return;
    this.threadsSetting = n;
    if (!this.engine) return; // it starts with them
    if (this.quantizing) this.quantCancelled = true;
    this.threadsInUse = null; // until the new worker says
    this.engine.setThreads(n);
    this.workerReset(); // backend.js: the new worker runs on the CPU
    this.resetInt8();
    if (this.info && this.modelBytes) {
      this.status(`starting ${n ? threadsText(n) : 'the default threads'} — loading ${shortName(this.modelName)} again`, true);
      this.loadBytes(this.modelBytes, this.modelProfile, this.modelName, this.modelMeta);
    }
  },

  /** Remembers what the worker said about its threads (any backend report: a load's, a frame's). */
  noteThreads(b) {
    if (b?.threads) this.threadsInUse = { count: b.threads, note: b.threadsNote ?? null, simd: b.simd ?? null };
  },

  /** The backend line's words for the threads: "4 threads", or "1 thread (why)". */
  threadsLine() {
    const t = this.threadsInUse;
    if (!t) return 'threads starting';
    return t.count === 1 && t.note ? `1 thread (${t.note})` : threadsText(t.count);
  },

  /** The backend line's words for the wasm vector instructions: "relaxed SIMD" where the int8
   * kernels run on its dot products (www/threads.js), else "SIMD128". */
  simdLine() {
    return this.threadsInUse?.simd === 'relaxed-simd' ? 'relaxed SIMD' : 'SIMD128';
  },

  /** What `qplay-ready` says about the threads: {threads, threadsNote, simd}. */
  threadsDetail(info) {
    this.noteThreads(info?.backend);
    return { threads: this.threadsInUse?.count ?? 1, threadsNote: this.threadsInUse?.note ?? null, simd: this.threadsInUse?.simd ?? null };
  },
};
