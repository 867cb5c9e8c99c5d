// The <qplay-detector>'s shadow DOM: styles and markup (the element, qplay-detector.js, wires it).
import { BASE, BUILTIN, SAMPLES } from './model-source.js';

export const BOX = '#0072B2';
export const INT8 = '#D55E00';

export const TEMPLATE = document.createElement('template');
TEMPLATE.innerHTML = `
<style>
  :host { display: block; container-type: inline-size; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
          --qp-border: var(--border, #d5dbe1); --qp-card: var(--card, #f4f6f8); --qp-muted: var(--muted, #5b6570); --qp-err: var(--err, #b3261e); }
  * { box-sizing: border-box; }
  .grid { display: grid; grid-template-columns: minmax(280px, 340px) minmax(0, 1fr); gap: 16px; }
  .grid > * { min-width: 0; position: relative; }
  @container (max-width: 820px) { .grid { grid-template-columns: minmax(0, 1fr); } }
  fieldset { border: 1px solid var(--qp-border); border-radius: 8px; padding: 10px 12px; margin: 0 0 12px; min-width: 0; }
  legend { font-weight: 600; padding: 0 4px; }
  label { display: block; margin: 6px 0; }
  select, input[type=file] { font: inherit; max-width: 100%; }
  select { width: 100%; padding: 3px 4px; border: 1px solid var(--qp-border); border-radius: 4px; background: transparent; color: inherit; }
  input[type=range] { width: 100%; }
  button { font: inherit; padding: 4px 10px; border: 1px solid var(--qp-border); border-radius: 6px; background: var(--qp-card); color: inherit; cursor: pointer; }
  button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 2px solid ${BOX}; outline-offset: 1px; }
  .status { font-size: 13px; color: var(--qp-muted); min-height: 1.5em; display: flex; flex-wrap: wrap; gap: 4px 8px; align-items: center; }
  .status .stage-text { flex: 1 1 60%; min-width: 0; overflow-wrap: anywhere; }
  progress { width: 100%; height: 10px; accent-color: ${BOX}; }
  .qrow { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; margin: 8px 0 4px; }
  .qprogress, .qat-progress { display: flex; flex-wrap: wrap; gap: 4px 8px; align-items: center; flex: 1 1 100%; font-size: 13px; color: var(--qp-muted); }
  .qprogress .qstage, .qat-progress .qat-stage { flex: 1 1 60%; min-width: 0; overflow-wrap: anywhere; }
  .qprogress .spin { display: inline-block; }
  .backend-switch { display: inline-flex; flex-wrap: wrap; gap: 4px 8px; align-items: center; font-size: 13px; color: var(--qp-muted); min-width: 0; }
  .backend-switch .bstage { overflow-wrap: anywhere; }
  .backend-switch .spin { display: inline-block; }
  .qresult:empty { display: none; }
  .qresult.cancelled, .qresult.failed { color: var(--qp-err); }
  button:disabled { opacity: 0.55; cursor: not-allowed; }
  .timings.pending { color: var(--qp-muted); font-style: italic; }
  .error details { margin: 6px 0 0; color: initial; white-space: normal; }
  video.source { position: absolute; left: 0; top: 0; width: 1px; height: 1px; opacity: 0; pointer-events: none; }
  .status[data-busy] .spin { display: inline-block; }
  .spin { display: none; width: 12px; height: 12px; border: 2px solid var(--qp-border); border-top-color: ${BOX}; border-radius: 50%; }
  @media (prefers-reduced-motion: no-preference) { .spin { animation: r 0.8s linear infinite; } }
  @keyframes r { to { transform: rotate(360deg); } }
  .error { color: var(--qp-err); border: 1px solid var(--qp-err); border-radius: 6px; padding: 6px 10px; margin: 0 0 10px; white-space: pre-wrap; }
  .error[hidden] { display: none; }
  .stage { position: relative; background: var(--qp-card); border-radius: 8px; min-height: 300px; display: flex; align-items: center; justify-content: center; }
  canvas { max-width: 100%; height: auto; display: block; border-radius: 6px; }
  .drop { position: absolute; inset: 0; border: 3px dashed ${BOX}; border-radius: 8px; display: none; align-items: center; justify-content: center; background: rgba(0,114,178,.08); font-weight: 600; }
  :host([data-dragging]) .drop { display: flex; }
  .timings { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; margin: 8px 0; }
  ol.dets { margin: 4px 0; padding-left: 20px; font-size: 13px; }
  p.score-note { margin: 4px 0; border-left: 3px solid var(--qp-err); padding-left: 8px; font-size: 13px; }
  table { border-collapse: collapse; font-size: 12.5px; width: 100%; }
  td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid var(--qp-border); vertical-align: top; }
  td.n, th.n { text-align: right; }
  table.ops { width: auto; min-width: 45%; margin-top: 10px; }
  .bad { color: var(--qp-err); font-weight: 600; }
  details { margin: 8px 0; }
  summary { cursor: pointer; font-weight: 600; }
  textarea { width: 100%; min-height: 180px; font: 12px ui-monospace, monospace; background: transparent; color: inherit; border: 1px solid var(--qp-border); border-radius: 4px; }
  .note { color: var(--qp-muted); font-size: 13px; }
  ul.assumed { margin: 4px 0; padding-left: 18px; font-size: 13px; }
  .panes { display: grid; grid-template-columns: minmax(0, 1fr); gap: 12px; position: relative; }
  .panes > * { min-width: 0; }
  :host([data-int8]) .panes { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
  @container (max-width: 560px) { :host([data-int8]) .panes { grid-template-columns: minmax(0, 1fr); } }
  .pane-h { font-weight: 600; font-size: 13px; margin-bottom: 4px; }
  .key { display: inline-block; width: 28px; height: 0; vertical-align: middle; margin-left: 6px; }
  .key.solid { border-top: 3px solid ${BOX}; } .key.dashed { border-top: 3px dashed ${INT8}; }
  [hidden] { display: none !important; }
  .agreement { font-size: 13px; margin: 6px 0; }
  .lost { font-size: 13px; margin: 6px 0; padding: 6px 8px; border-left: 3px solid #d55e00; background: #fff4ec; }
  .qat-saved { font-size: 13px; margin: 6px 0; padding: 6px 8px; border-left: 3px solid #0072b2; background: #eef6fc; }
  .row { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
  .live-controls { border-top: 1px solid var(--qp-border); border-bottom: 1px solid var(--qp-border); padding: 4px 0; margin: 8px 0; }
  .view-row { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; font-size: 13px; margin: 6px 0; }
  .view-row label { margin: 0; }
  .view-row select { width: auto; }
  .to-onnx label { display: inline; margin: 0; }
  .to-onnx select { width: auto; }
  .to-onnx .note.failed { color: var(--qp-err); }
  .live { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; margin: 6px 0; padding: 6px 8px; border-radius: 6px; background: var(--qp-card); }
  .live b { font-family: system-ui, sans-serif; }
  :host([data-overlay]) .int8-pane .stage { display: none; }
  :host([data-int8][data-overlay]) .panes { grid-template-columns: minmax(0, 1fr); }
  a.dl { margin-right: 12px; }
  .acts { display: flex; flex-direction: column; gap: 3px; align-items: stretch; }
  button[data-keep], button[data-bits] { white-space: nowrap; font-size: 12px; padding: 2px 6px; }
  .charts { display: grid; gap: 12px; margin: 10px 0; }
  figure.chart { margin: 0; border: 1px solid var(--qp-border); border-radius: 8px; padding: 8px 10px; min-width: 0; }
  figure.chart svg { display: block; max-width: 100%; height: auto; }
  .chart-h { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; font-size: 13px; margin-bottom: 6px; }
  .chart-h .grow { flex: 1; }
  .chart-h select { width: auto; }
  .chart-h label { margin: 0; display: inline-flex; gap: 4px; align-items: center; min-width: 0; max-width: 100%; }
  .chart-h select { min-width: 0; max-width: 100%; flex: 0 1 auto; }
  button[data-export] { font-size: 12px; padding: 1px 7px; }
  .scroll { overflow: auto; max-height: 360px; border-top: 1px solid var(--qp-border); }
  .scroll.channels { max-height: 260px; }
  .scroll.channels table { width: auto; min-width: 60%; }
  .scroll.channels thead th { position: sticky; top: 0; background: var(--qp-card); }
  g.bar:focus { outline: none; }
  g.bar:focus-visible rect.bg { fill: ${BOX}; fill-opacity: 0.22; }
  g.bar[aria-pressed=false]:hover rect.bg { fill: ${BOX}; fill-opacity: 0.08; }
  .layer-h { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: baseline; font-size: 13px; }
  .layer-h code { font-weight: 600; word-break: break-all; }
  .hists, .pairs { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(300px, 100%), 1fr)); gap: 12px; }
  .table-wrap { overflow-x: auto; max-width: 100%; }
  .qreport-body p { overflow-wrap: anywhere; }
  .qreport-body p.warn { border-left: 3px solid var(--qp-err); padding-left: 8px; }
  table.layers td { white-space: nowrap; }
  .qat-grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0 10px; }
  .qat-grid input { width: 100%; min-width: 0; font: inherit; }
  .qat-layers { display: block; margin: 4px 0; font-size: 13px; }
  .qat-progress[data-paused] .spin { animation: none; }
  .qat-result.failed, .qat-result.cancelled { color: var(--qp-err); }
  figure.qat-chart svg { width: 100%; height: auto; }
  code.qat-command { display: block; overflow-wrap: anywhere; margin-top: 4px; }
  .formula { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; }
</style>
<div class="grid">
  <div part="toolbar">
    <fieldset>
      <legend>Model</legend>
      <label>Built-in <select name="builtin" aria-label="built-in model">
        ${Object.entries(BUILTIN).map(([k, v]) => `<option value="${k}">${v.label}</option>`).join('')}
        <option value="custom" hidden>Your file</option>
      </select></label>
      <label title="An ONNX model whose weights are in a separate file (PyTorch writes model.onnx.data beside model.onnx): choose both">…or your own model (ONNX or TFLite, with its .data file if it has one) <input type="file" name="model" accept=".onnx,.tflite,.data,.bin,application/octet-stream" multiple></label>
      <label>Profile JSON (optional) <input type="file" name="profile" accept=".json,application/json"></label>
      <div class="status" part="status" aria-live="polite"><span class="spin"></span><span class="stage-text">loading…</span>
        <button type="button" name="cancel" hidden>Cancel</button>
        <progress class="dl-bar" hidden aria-label="model download"></progress></div>
    </fieldset>
    <fieldset>
      <legend>Image</legend>
      <label>Sample photo <select name="sample" aria-label="sample photo">
        ${SAMPLES.map((s) => `<option value="${s}">${s}</option>`).join('')}
        <option value="custom" hidden>Your image</option>
      </select></label>
      <label>…or your own <input type="file" name="image" accept="image/*"></label>
      <div class="live-controls" part="camera">
        <div class="row"><button type="button" name="camera">Start camera</button>
          <button type="button" name="pause" hidden aria-pressed="false">Pause (freeze frame)</button>
          <button type="button" name="stop" hidden>Stop</button></div>
        <label class="camera-pick" hidden>Camera <select name="camera-device" aria-label="camera"></select></label>
        <label><input type="checkbox" name="mirror" checked> mirror the camera (selfie view)</label>
        <label>…or a video file <input type="file" name="video" accept="video/*"></label>
        <button type="button" name="use-frame" hidden>Use this frame for calibration</button>
      </div>
      <label>Score threshold <output name="scoreOut"></output>
        <input type="range" name="score" min="0.05" max="0.95" step="0.05" aria-label="score threshold"></label>
      <p class="note">Drop an .onnx or .tflite model, a profile .json or an image anywhere on this panel.</p>
    </fieldset>
    <fieldset class="quant">
      <legend>Quantize to INT8</legend>
      <label>Calibration method <select name="method" aria-label="calibration method">
        <option value="auto">Auto: chosen by measurement (default)</option><option value="mse">MSE</option><option value="percentile">Percentile 99.99</option><option value="minmax">MinMax</option>
        <option value="entropy">Entropy (KL)</option><option value="ema">Moving-average MinMax</option>
      </select></label>
      <label><input type="checkbox" name="perChannel" checked> per-channel weights (off: per tensor)</label>
      <label>Weight bits <select name="weightBits" aria-label="weight bits">
        <option value="8">8 (int8)</option><option value="6">6</option><option value="5">5</option>
        <option value="4">4 (stored as int4: a smaller file; ONNX opset 21)</option><option value="3">3 (int4 storage)</option><option value="2">2 (int4 storage)</option>
      </select></label>
      <label>Weight rounding <select name="rounding" aria-label="weight rounding">
        <option value="auto">Auto: GPTQ below 8 bits (default)</option>
        <option value="gptq">GPTQ: fitted to each layer's outputs (slower, better)</option>
        <option value="nearest">Round to nearest (fastest)</option>
      </select></label>
      <label>Keep the <input type="number" name="autoMixed" min="0" max="20" step="1" value="0" aria-label="number of most sensitive layers to keep FP32" style="width:4em">
        most sensitive layers <select name="mixedTo" aria-label="what the most sensitive layers become"><option value="fp32">FP32</option><option value="16">at 16-bit activations (weights as chosen)</option><option value="w8">at 8-bit weights (when the weights have fewer bits)</option></select>
        (automatic mixed precision; each layer's sensitivity is measured, which takes a while)</label>
      <p class="note keep-note" hidden><span class="keep-text"></span> <button type="button" name="clear-mixed" title="quantize every layer alike again">Clear</button></p>
      <label><input type="checkbox" name="use-samples" checked> calibrate with the ${SAMPLES.length} sample photos</label>
      <label>…and your images <input type="file" name="calib" accept="image/*" multiple aria-label="calibration images"></label>
      <p class="calib-note note" aria-live="polite"></p>
      <button type="button" name="clear-calib" hidden>Clear my calibration images</button>
      <div class="qrow"><button type="button" name="quantize">Quantize</button>
        <div class="qprogress" role="status" hidden><span class="spin"></span><span class="qstage"></span>
          <button type="button" name="qcancel">Cancel</button><progress class="qbar" aria-label="quantization progress"></progress></div></div>
      <p class="qresult note" aria-live="polite"></p>
      <label class="own-int8">…or compare with your own INT8 model (ONNX QDQ, or a quantized .tflite: int8, uint8, 16x8)
        <input type="file" name="own-int8" accept=".onnx,.tflite" aria-label="your own INT8 model"></label>
      <p class="note">Post-training quantization in this tab: int8 (or fewer-bit) weights, uint8 activations, QDQ ONNX that onnxruntime loads.</p>
    </fieldset>
    <fieldset class="qat" hidden>
      <legend>Fine-tune (QAT)</legend>
      <p class="note">Quantization-aware training of the INT8 model against the FP32 one, on the calibration images (every fourth held out to check on), no labels needed. The best held-out step is kept.</p>
      <div class="qat-grid">
        <label>Steps <input type="number" name="qatSteps" min="1" max="1000" step="1" value="30"></label>
        <label>Batch <input type="number" name="qatBatch" min="1" max="16" step="1" value="2"></label>
        <label>Learning rate <input type="text" name="qatLr" value="1e-4" inputmode="decimal" spellcheck="false"></label>
        <label>Check every <input type="number" name="qatEvery" min="1" max="100" step="1" value="5" aria-label="held-out check every N steps"></label>
      </div>
      <label class="qat-layers" title="Besides the outputs, pull each quantized activation towards the FP32 model's (a per-layer feature term of weight 1)"><input type="checkbox" name="qatLayers" checked> match every layer, not only the outputs</label>
      <div class="qrow"><button type="button" name="qat-start">Fine-tune</button>
        <button type="button" name="qat-pause" hidden aria-pressed="false">Pause</button>
        <button type="button" name="qat-stop" hidden>Stop (keep the best step)</button>
        <div class="qat-progress" role="status" hidden><span class="spin"></span><span class="qat-stage"></span>
          <progress class="qat-bar" aria-label="fine-tuning progress"></progress></div></div>
      <p class="qat-result note" aria-live="polite"></p>
      <a class="qat-dl" hidden></a>
      <details class="qat-cli"><summary>The same in the CLI</summary><code class="qat-command formula"></code></details>
    </fieldset>
  </div>
  <div>
    <div class="error" role="alert" hidden></div>
    <p class="qat-saved" role="status" hidden><span class="qat-saved-text"></span>
      <a class="qat-saved-dl">Download it</a> <button type="button" name="qat-discard">Discard</button></p>
    <div class="panes">
      <div><div class="pane-h fp32-h">FP32 <span class="key solid"></span></div>
        <div class="stage" part="overlay"><canvas class="fp32" width="640" height="424" aria-label="image with FP32 detections"></canvas><div class="drop">Drop to load</div></div>
        <div class="timings" part="timings"></div>
        <p class="score-note fp32-score-note" role="status" hidden></p><ol class="dets"></ol></div>
      <div class="int8-pane" hidden><div class="pane-h">INT8 (int8 kernels) <span class="key dashed"></span></div>
        <div class="stage"><canvas class="int8" aria-label="image with INT8 detections"></canvas></div>
        <div class="timings int8-timings"></div>
        <p class="score-note int8-score-note" role="status" hidden></p><ol class="dets int8-dets"></ol></div>
    </div>
    <div class="view-row"><label><input type="checkbox" name="overlay"> overlay INT8 on the FP32 pane</label>
      <label>Backend <select name="backend" aria-label="backend"><option value="cpu">CPU (wasm)</option><option value="webgpu">WebGPU</option></select></label>
      <label title="The CPU's threads in the worker: a change starts a new worker and loads the model again">Threads <select name="threads" aria-label="CPU threads"></select></label>
      <span class="backend-switch" role="status" hidden><span class="spin"></span><span class="bstage"></span>
        <button type="button" name="bcancel">Cancel</button></span>
      <span class="backend-note note"></span></div>
    <div class="live" part="live" aria-live="off" hidden></div>
    <div class="agreement"></div>
    <p class="lost" role="status" hidden><span class="lost-text"></span>
      <button type="button" name="fix-lost">Keep the most sensitive layers FP32 and quantize again</button></p>
    <figure class="chart qat-chart" hidden><div class="chart-h"><b class="grow">Fine-tuning (QAT)</b>
      <span>FP32 <span class="key solid"></span></span><span>INT8 <span class="key dashed"></span></span></div>
      <div class="qat-svg" part="qat-chart"></div>
      <details class="qat-changed" hidden><summary>What fine-tuning changed (the kept step against the INT8 model from Quantize)</summary><div class="qat-changed-body"></div></details></figure>
    <video class="source" muted playsinline aria-hidden="true"></video>
    <details class="qreport" hidden open><summary>Quantization report</summary><div class="qreport-body"></div></details>
    <details class="model-info" open><summary>Model summary</summary><div class="summary"></div></details>
    <details class="profile-edit"><summary>Detection profile (edit to override)</summary>
      <ul class="assumed"></ul>
      <div class="alternatives" hidden></div>
      <p class="note"><a class="profile-doc" href="${BASE}profile.html" target="_blank" rel="noopener">What each field means</a></p>
      <textarea name="profile-json" spellcheck="false" aria-label="profile JSON"></textarea>
      <button type="button" name="apply">Apply profile</button></details>
  </div>
</div>`;
