// The best step of a fine-tuning run, kept in the browser (IndexedDB) while the run goes on, so
// that closing the tab loses nothing: the page that opens next offers it for download. One run
// per origin (the newest); a run that ends normally (done, stopped, failed with a result) removes
// it, since its result is on the page. Everything here fails soft: without IndexedDB (a private
// window that refuses it) the run goes on unsaved.
const DB = 'qplay';
const STORE = 'runs';
const KEY = 'qat';

function open() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function withStore(mode, fn) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Saves `run`: {model, step, steps, ptqSqnr, sqnr, weightBits, savedAt, bytes: ArrayBuffer}. */
export async function saveRun(run) {
  try { await withStore('readwrite', (s) => s.put(run, KEY)); } catch (e) { console.warn('could not keep the fine-tuning run:', e?.message ?? e); }
}

/** The saved run, or null. */
export async function loadRun() {
  try { return (await withStore('readonly', (s) => s.get(KEY))) ?? null; } catch { return null; }
}

/** Forgets the saved run. */
export async function clearRun() {
  try { await withStore('readwrite', (s) => s.delete(KEY)); } catch { /* nothing saved */ }
}
