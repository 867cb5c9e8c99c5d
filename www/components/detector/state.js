// The detector's display as a function of one state, so that the page never contradicts itself.
//
// The state: the active model (the one that loaded and runs; a failed load never replaces it), the
// active image or video frame, the backend in use (or being switched to), the last result and the
// model, image and backend it was computed for, and the INT8 model with the model it was quantized
// from. `display(state)` says what is on screen: a result is shown only with the image, model and
// backend it belongs to; otherwise the image is shown without boxes and a pending line says what
// is being computed (or what is missing).

/** The backends' names as the page says them. */
export const BACKEND_NAMES = { cpu: 'the CPU', webgpu: 'WebGPU' };

/** Whether `result` was computed for this model and image (and so may be drawn on it); with
 * `backend` ({name: 'cpu' | 'webgpu', switching}), also on that backend (`result.ranOn`), and not
 * while a switch of backend is in progress (a result from before the switch is the other backend's). */
export function isCurrent(result, model, image, backend = null) {
  if (!(result && model && image && result.modelId === model.id && result.imageId === image.id)) return false;
  return !backend || (!backend.switching && result.ranOn === backend.name);
}

/** The pending line of a switch of backend to `name`. */
export function switchingText(name) {
  return name === 'webgpu' ? 'Switching to WebGPU: compiling the kernels…' : `Switching to ${BACKEND_NAMES[name] ?? name}…`;
}

/**
 * What the detector shows.
 *   state: { model: {id, name, tag} | null (tag: `FP32`, `full-integer` for a model that is integer already, `quantized` for an ONNX INT8 export: summary.js's `modelTag`), image: {id, name} | null, result, int8: {modelId, seq} | null,
 *            loading: name of a model being loaded | null, overlay: boolean,
 *            backend: {name: 'cpu' | 'webgpu', switching: boolean} | null (null: any backend),
 *            failed: the last detection with this model on this image failed (a new one clears it) }
 * `backend.name` is the backend in use, or the one being switched to while `switching`.
 * Returns { fp32: result | null, int8: INT8 result | null, pending: text | null, caption: text }:
 * `fp32`/`int8` are the results to draw and list (null: draw the image alone), `pending` and
 * `int8Pending` the lines shown in place of the timings and lists, `caption` the canvas's accessible name.
 */
export function display({ model, image, result, int8 = null, loading = null, backend = null, failed = false }) {
  const fresh = isCurrent(result, model, image, backend);
  const fp32 = fresh ? result : null;
  // INT8 detections only from the INT8 model of this model that is in use (not an earlier run's).
  // It ran in the same worker as the FP32 model, on the same threads (the result carries them once).
  const q = fp32?.int8 && int8 && int8.modelId === model.id && fp32.int8Seq === int8.seq
    ? { ...fp32.int8, backend: fp32.int8.backend ?? fp32.backend } : null;
  const switching = backend?.switching ? switchingText(backend.name) : null;
  let pending = null;
  if (!fp32) {
    if (!image) pending = '';
    else if (!model) pending = loading ? `Loading ${loading}…` : 'No model is loaded: choose one in the Model box.';
    else if (failed) pending = `Detection with ${model.name} on ${image.name} failed: the message above says why.`;
    else pending = switching ?? `Detecting with ${model.name} on ${image.name}…`;
  }
  const int8Pending = int8 && !q ? (image && model ? switching ?? `Detecting with the INT8 model on ${image.name}…` : '') : null;
  const n = (r) => `${r.detections.length} detection${r.detections.length === 1 ? '' : 's'}`;
  const caption = !image ? 'no image'
    : fp32 ? `${image.name}: ${n(fp32)} by ${model.name} (${model.tag ?? 'FP32'})${q ? `, ${n(q)} by the INT8 model` : ''}`
      : `${image.name}: ${pending}`;
  return { fp32, int8: q, pending, int8Pending, caption };
}
