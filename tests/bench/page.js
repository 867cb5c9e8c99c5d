// The benchmark page: runs bench.js in a dedicated worker (qplay's threaded module blocks while its
// pool works, which only a worker may do) with this page's query, shows its progress, and puts
// its result in `window.__bench` (and `window.__benchStatus`) for scripts/bench.mjs and the tests,
// and in a table.
const $ = (id) => document.getElementById(id);
let stage = 'starting the worker';

const worker = new Worker(new URL('./bench.js', import.meta.url), { type: 'module' });
worker.onmessage = ({ data: m }) => {
  if (m.type === 'status') {
    stage = m.text;
    window.__benchStatus = m.text;
    $('status').textContent = m.text;
  } else if (m.type === 'error') fail(m.error, m.stage);
  else if (m.type === 'done') {
    render(m.bench);
    window.__bench = m.bench;
  }
};
worker.onerror = (e) => { e.preventDefault(); fail(`the bench worker failed: ${e.message || 'it could not be loaded'}`, stage); };
worker.postMessage({ search: location.search });

function fail(error, at) {
  window.__bench = { error, stage: at, userAgent: navigator.userAgent };
  const el = $('status');
  el.textContent = `error while ${at}: ${error}`;
  el.className = 'error';
}

function render(b) {
  const meta = {
    model: b.model, input: `${b.input} [${b.shape.join('×')}]`,
    runs: `${b.iters} timed per engine, ${b.warmup} warm-up excluded; ${b.order}`,
    agreement: `max |Δ| ${b.agreement.max_abs_diff.toExponential(2)} over output range ${b.agreement.output_range.toPrecision(4)} `
      + `(${b.agreement.max_abs_diff_over_range.toExponential(2)} of range), ${b.agreement.output} [${b.agreement.output_shape.join('×')}]`,
    versions: `qplay ${b.versions.qplay}, onnxruntime-web ${b.versions['onnxruntime-web']}`,
    threads: `${b.threads} per engine (qplay's pool, ort.env.wasm.numThreads); ${b.hardware_concurrency} hardware threads`,
    browser: b.userAgent,
  };
  $('meta').replaceChildren(...Object.entries(meta).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
  $('results').querySelector('tbody').replaceChildren(...b.results.map((r) => {
    const tr = document.createElement('tr');
    for (const [v, num] of [[r.engine], [r.backend], [r.precision], [r.median_ms.toFixed(2), 1], [r.min_ms.toFixed(2), 1], [r.runs.length, 1]]) {
      const td = document.createElement('td');
      td.textContent = v;
      if (num) td.className = 'num';
      tr.append(td);
    }
    return tr;
  }));
  $('results').hidden = false;
  $('ratio').textContent = `qplay / onnxruntime-web (median): ${b.ratio_median_qplay_over_ort.toFixed(2)}×, (min): ${b.ratio_min_qplay_over_ort.toFixed(2)}×; `
    + `median of per-run ratios: ${b.ratio_paired_median_qplay_over_ort.toFixed(2)}×`
    + (b.int8 ? `; qplay INT8 / onnxruntime-web FP32: ${b.ratio_median_int8_over_ort_fp32.toFixed(2)}×, qplay INT8 / qplay FP32: ${b.ratio_median_int8_over_qplay_fp32.toFixed(2)}× (INT8 SQNR vs FP32 ${b.int8.sqnr_db_vs_fp32} dB)` : '')
    + (b.ratio_median_webgpu_int8_over_ort_webgpu_fp32 ? `; WebGPU (${b.webgpu.adapter}): qplay INT8 / onnxruntime-web FP32 ${b.ratio_median_webgpu_int8_over_ort_webgpu_fp32.toFixed(2)}×` : '');
}
