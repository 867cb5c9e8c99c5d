// Shared by the browser tests that drop a model file into the page's <qplay-detector>
// (families.test.mjs, uploads.test.mjs): upload it, wait for its first result, read what the
// page shows.
import { readFileSync } from 'node:fs';

/**
 * Uploads the file at `path` into the detector of session `s` (from tests/browser.mjs's `open`)
 * once it is idle, waits until it has shown its first result for the file (`orError`: or an
 * error), and returns { result, assumed, summary, error } as the page shows them.
 */
export async function uploadModel(s, path, { orError = false } = {}) {
  const det = s.page.locator('qplay-detector');
  const name = path.split('/').pop();
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    return el?.shadowRoot && !el.running && (el.result || !el.shadowRoot.querySelector('.error').hidden);
  }, null, { timeout: 180_000 });
  await det.locator('input[name=model]').setInputFiles({ name, mimeType: 'application/octet-stream', buffer: readFileSync(path) });
  await s.page.waitForFunction(([n, orError]) => {
    const el = document.querySelector('qplay-detector');
    const c = el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '';
    // An error about this file (a load error names it; a failed detection's line does), not the previous one's.
    const e = el.shadowRoot.querySelector('.error');
    const err = orError && !e.hidden && (e.textContent.includes(n) || c.includes(`Detection with ${n} on`));
    // (FP32); (full-integer) for a model whose ops are integer already, (quantized) for an ONNX INT8 export.
    return !el.running && (['FP32', 'full-integer', 'quantized'].some((t) => c.includes(`by ${n} (${t})`)) || err);
  }, [name, orError], { timeout: 180_000 });
  return det.evaluate((el) => ({
    result: el.result,
    assumed: el.shadowRoot.querySelector('ul.assumed').textContent,
    summary: el.shadowRoot.querySelector('.summary').textContent,
    error: el.shadowRoot.querySelector('.error').hidden ? '' : el.shadowRoot.querySelector('.error').textContent,
  }));
}
