// The detector's backend: CPU or WebGPU in the worker, and the line that says what actually runs.
//
// A switch of backend is part of the display state (state.js): from the moment the picker changes
// until the first frame on the new backend has run (on WebGPU that frame compiles the kernels), the
// image shows without the old backend's boxes, and beside the picker a line says what is happening,
// with a spinner and Cancel (which stops the worker and goes back to the CPU, and says so). The
// picker and the line under it are drawn from the same state, so they never disagree. Cancel of
// other work lives here too: a quantization is asked to stop (the worker stays), the rest replaces
// the worker.
import { hasWebGpu } from './util.js';
import { switchingText } from './state.js';
import { shortName } from './model-source.js';
import { modelTag, tagName } from './summary.js';
import { threadsMethods, threadsText } from './threads.js';

/** The timings line of a result: the stage times, where they ran, and a first frame on WebGPU labelled as a warm-up. */
export function timingsText(r) {
  const t = r.timings;
  const warm = r.warmup ? ' (first frame on WebGPU: includes compiling the kernels)' : '';
  const where = r.on !== 'webgpu' ? `wasm, CPU, ${threadsText(r.backend?.threads ?? 1)}`
    : r.preOn === 'gpu' ? 'WebGPU: the frame is pre-processed on the GPU, within inference; decoding on the CPU' : 'inference on WebGPU, pre-processing and decoding on the CPU';
  return `${r.detections.length} detection(s) · pre-process ${t.preprocess.toFixed(1)} ms · inference ${t.inference.toFixed(1)} ms${warm} · decode ${t.decode.toFixed(1)} ms (${where})`;
}

/** Methods of <qplay-detector> (assigned to its prototype), with the Threads setting's (threads.js). */
export const backendMethods = {
  ...threadsMethods,

  /** Switches inference between the CPU and WebGPU (in the worker); shows what is actually in use and why. */
  async setBackend(want) {
    // Going back while a switch to WebGPU is in progress stops it (the worker may be busy compiling for a long while).
    if (this.switching && want === this.switching.from && this.switching.to === 'webgpu') { this.cancelSwitch(); return; }
    this.backend = want;
    this.backendMessage = null;
    if (!this.engine) { this.showBackend(); return; }
    if (want === 'webgpu' && !hasWebGpu()) {
      this.switching = null;
      this.backendInfo = { backend: 'cpu', note: 'WebGPU is not available in this browser (no navigator.gpu)' };
      this.showBackend();
      this.render();
      return;
    }
    // Frames asked for from now on run on the new backend (the worker takes requests in order): run() passes their generation to frameBackend.
    const sw = { to: want, from: this.backendInfo?.backend ?? 'cpu', gen: ++this.backendGen };
    this.switching = sw;
    this.showBackend();
    this.render();
    this.emit('qplay-progress', { stage: switchingText(want) });
    let info;
    try {
      info = await this.engine.setBackend(want);
    } catch (e) {
      if (this.switching !== sw) return; // cancelled: cancel() says so
      this.endSwitch();
      this.showError(`Switching the backend failed: ${e.message}`, 'backend');
      return;
    }
    if (this.switching !== sw) return; // cancelled, or another switch came after
    this.backendInfo = info;
    if (info.note) this.emit('qplay-error', { code: 'webgpu-unavailable', message: info.note });
    // On WebGPU the switch lasts until the first frame has run there (it compiles the kernels); the CPU, or a fall back to it, is ready now.
    if (info.backend !== 'webgpu' || !this.info || !this.image) this.endSwitch();
    else this.showBackend();
    // The first frame on the new backend (a live source detects its next frame by itself; a frame
    // asked for since the switch, say for a photo picked meanwhile, is that frame already).
    if (this.info && this.image && !this.looping && !(this.running && this.runGen === sw.gen)) await this.run();
  },

  /** The switch in progress has ended (its first frame ran, it fell back, or it failed): the note says what is in use. */
  endSwitch() {
    if (!this.switching) return;
    this.switching = null;
    this.stats?.reset(); // live timings: the frames on the new backend get their own warm-up
    this.showBackend();
    this.render();
  },

  /** A frame came back from the worker (`r`; null when it failed) that was asked for in backend generation
   * `gen`: a switch it was asked for after has ended (that frame ran on the new backend), and a backend
   * the worker changed by itself (a lost GPU device re-created, or a fall back to the CPU) is shown. */
  frameBackend(gen, r) {
    if (gen !== this.backendGen) return; // asked for before a switch or a Cancel: says nothing about now
    if (r && (r.recovered || (r.backend && r.backend.backend !== this.backendInfo?.backend))) {
      this.backendInfo = { ...r.backend, note: r.recovered ?? r.backend.note };
      if (!this.switching) this.showBackend();
    }
    this.endSwitch();
  },

  /** Cancel beside the picker: stops the worker (the only way to stop a GPU compile) and goes back to the CPU. */
  cancelSwitch() {
    if (!this.switching) return;
    this.cancelledSwitch = this.switching;
    if (this.quantizing) this.quantCancelled = true;
    this.restartWorker();
  },

  /** Stops what runs: a download is aborted (the model in use stays); a quantization is asked to
   * stop at its next stage (the worker and its models stay: engine.stopWork, in a cross-origin-
   * isolated page); other work in the worker, or a quantization that did not stop, is stopped by
   * replacing the worker, so the model in use is loaded again into the new one. */
  async cancel() {
    const name = shortName(this.modelName);
    if (this.quantizing) this.quantCancelled = true;
    if (this.abortDownload) {
      this.abortDownload.abort();
      this.abortDownload = null;
      this.showModelChoice();
      this.status(this.info ? `download cancelled — still using: ${name}` : 'download cancelled — choose a model to load');
      return;
    }
    if (this.quantizing && !this.stopping) {
      this.stopping = true;
      this.quantStage('stopping…');
      const engine = this.engine;
      const stopped = await engine.stopWork().finally(() => { this.stopping = false; });
      if (stopped || engine !== this.engine) return;
    }
    this.restartWorker();
  },

  /** Stops the work in the worker by replacing it (the only way to stop a wasm call or a GPU compile):
   * the new worker runs on the CPU, and the model in use is loaded again into it. */
  restartWorker() {
    const name = shortName(this.modelName);
    this.engine.cancel();
    this.workerReset();
    this.resetInt8();
    if (this.info && this.modelBytes) {
      this.status(`cancelled — loading ${name} again`, true);
      this.loadBytes(this.modelBytes, this.modelProfile, this.modelName, this.modelMeta).then(() => {
        if (this.info) this.status(`${this.modelName}: ready (cancelled; loaded again)`);
      });
    } else {
      this.info = null;
      this.showModelChoice();
      this.status('cancelled — choose a model to load');
      this.render();
    }
  },

  /** The worker was replaced (Cancel): the new one runs on the CPU. A switch in progress ends, and the
   * picker and the note say the CPU, with why. */
  workerReset() {
    const sw = this.cancelledSwitch ?? this.switching;
    this.cancelledSwitch = null;
    const wasGpu = this.backendInfo?.backend === 'webgpu' || sw?.to === 'webgpu';
    this.switching = null;
    this.backendGen += 1;
    this.backendInfo = { backend: 'cpu', note: null };
    if (wasGpu) {
      this.backend = 'cpu';
      this.backendMessage = sw?.to === 'webgpu'
        ? 'Switching to WebGPU was cancelled: back on the CPU (choose WebGPU to try again).'
        : 'The work was cancelled and the worker restarted on the CPU (choose WebGPU to use it again).';
      this.changed();
    }
    this.showBackend();
    this.render();
  },

  /** The picker, the switch line and the note under it, from one state: while a switch is in progress, the
   * picker shows where it goes and the line says so (with a spinner and Cancel); otherwise the picker and
   * the note show what runs inference now: on which adapter, how much of the model is on the GPU, and why
   * not WebGPU when it is not. */
  showBackend() {
    const b = this.backendInfo ?? { backend: 'cpu', note: null };
    this.noteThreads(b);
    if (b.placement) this.placement = { ...(this.placement ?? {}), ...Object.fromEntries(Object.entries(b.placement).filter(([, v]) => v)) };
    const el = this.$('.backend-note');
    const pick = this.$('select[name=backend]');
    const sw = this.switching;
    const line = this.$('.backend-switch');
    line.hidden = !sw;
    el.hidden = !!sw;
    this.$('.backend-switch .bstage').textContent = sw ? switchingText(sw.to) : '';
    pick.querySelector('option[value=webgpu]').disabled = !hasWebGpu();
    if (sw) { pick.value = sw.to; el.dataset.backend = ''; return; }
    // Not started yet: the backend chosen, which opens when the detector starts.
    const shown = this.engine || this.backend !== 'webgpu' ? b.backend : 'webgpu';
    pick.value = shown;
    if (shown === 'webgpu' && !this.engine) {
      el.textContent = 'WebGPU is chosen: it opens when the detector starts.';
      el.title = '';
    } else if (b.backend === 'webgpu') {
      const steps = (s) => s?.match(/^\d+ of \d+ steps on the GPU/)?.[0];
      const soft = /swiftshader|llvmpipe|software|cpu/i.test(b.adapter ?? '');
      const parts = [`In use: WebGPU — ${b.adapter || 'adapter'}; int8 dot products ${b.packedDot ? 'with dot4I8Packed' : 'unpacked (no packed_4x8_integer_dot_product)'}.`];
      const tag = tagName(modelTag(this.info));
      if (steps(this.placement?.fp32)) parts.push(`${tag}: ${steps(this.placement.fp32)}.`);
      if (this.int8 && steps(this.placement?.int8)) parts.push(`INT8: ${steps(this.placement.int8)}.`);
      parts.push('Frames are pre-processed on the GPU (resize, normalisation) and decoded on the CPU.');
      if (soft) parts.push('This adapter is a software emulation of a GPU on the CPU (no GPU, or a headless browser): expect it to be slower than the CPU backend.');
      if (b.note) parts.push(b.note);
      el.textContent = parts.join(' ');
      el.title = [this.placement?.fp32 && `${tag}: ${this.placement.fp32}`, this.int8 && this.placement?.int8 && `INT8: ${this.placement.int8}`].filter(Boolean).join('\n');
    } else {
      const why = b.note ?? this.backendMessage ?? (hasWebGpu() ? 'Choose WebGPU to run inference on the GPU.' : 'WebGPU is not available in this browser (no navigator.gpu), so the CPU is used.');
      el.textContent = `In use: CPU — wasm ${this.simdLine()}, ${this.threadsLine()}, in a Web Worker. ${why}`;
      el.title = '';
    }
    el.dataset.backend = shown;
  },

  /** The backend the display state holds results to (state.js): the one in use, or the one a switch goes to. */
  displayBackend() {
    if (this.switching) return { name: this.switching.to, switching: true };
    return { name: this.backendInfo?.backend ?? 'cpu', switching: false };
  },
};
