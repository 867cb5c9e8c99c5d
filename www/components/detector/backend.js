// The detector's backend: CPU or WebGPU in the worker, and the line that says what actually runs.
import { hasWebGpu } from './util.js';

/** Methods of <qplay-detector> (assigned to its prototype). */
export const backendMethods = {
  /** Switches inference between the CPU and WebGPU (in the worker); shows what is actually in use and why. */
  async setBackend(want) {
    this.backend = want;
    this.$('select[name=backend]').value = want;
    if (!this.engine) { this.showBackend(); return; }
    if (want === 'webgpu' && !hasWebGpu()) {
      this.backendInfo = { backend: 'cpu', note: 'WebGPU is not available in this browser (no navigator.gpu)' };
      this.$('select[name=backend]').value = 'cpu';
      this.showBackend();
      return;
    }
    const name = this.modelName ?? 'model';
    this.status(want === 'webgpu' ? `${name}: opening WebGPU and compiling the kernels…` : `${name}: switching to the CPU…`, true);
    try {
      this.backendInfo = await this.engine.setBackend(want);
      if (this.backendInfo.backend !== want) this.$('select[name=backend]').value = this.backendInfo.backend;
      this.status(`${name}: ${this.backendInfo.backend === 'webgpu' ? 'on WebGPU' : 'on the CPU'}`);
      this.showBackend();
      if (this.backendInfo.note) this.emit('qplay-error', { code: 'webgpu-unavailable', message: this.backendInfo.note });
      if (this.info && this.image && !this.video?.live) await this.run();
    } catch (e) {
      if (!e.cancelled) this.showError(`Switching the backend failed: ${e.message}`, 'backend');
    }
  },

  /** The backend line: what runs inference now, on which adapter, how much of the model is on the GPU, and why not WebGPU when it is not. */
  showBackend() {
    const b = this.backendInfo ?? { backend: 'cpu', note: null };
    if (b.placement) this.placement = { ...(this.placement ?? {}), ...Object.fromEntries(Object.entries(b.placement).filter(([, v]) => v)) };
    const el = this.$('.backend-note');
    if (b.backend === 'webgpu') {
      const steps = (s) => s?.match(/^\d+ of \d+ steps on the GPU/)?.[0];
      const soft = /swiftshader|llvmpipe|software|cpu/i.test(b.adapter ?? '');
      const parts = [`In use: WebGPU — ${b.adapter || 'adapter'}; int8 dot products ${b.packedDot ? 'with dot4I8Packed' : 'unpacked (no packed_4x8_integer_dot_product)'}.`];
      if (steps(this.placement?.fp32)) parts.push(`FP32: ${steps(this.placement.fp32)}.`);
      if (this.int8 && steps(this.placement?.int8)) parts.push(`INT8: ${steps(this.placement.int8)}.`);
      parts.push('Frames are pre-processed on the GPU (resize, normalisation) and decoded on the CPU.');
      if (soft) parts.push('This adapter is a software emulation of a GPU on the CPU (no GPU, or a headless browser): expect it to be slower than the CPU backend.');
      if (b.note) parts.push(b.note);
      el.textContent = parts.join(' ');
      el.title = [this.placement?.fp32 && `FP32: ${this.placement.fp32}`, this.int8 && this.placement?.int8 && `INT8: ${this.placement.int8}`].filter(Boolean).join('\n');
    } else {
      const why = b.note ?? (hasWebGpu() ? 'Choose WebGPU to run inference on the GPU.' : 'WebGPU is not available in this browser (no navigator.gpu), so the CPU is used.');
      el.textContent = `In use: CPU — wasm SIMD128, 1 thread, in a Web Worker. ${why}`;
      el.title = '';
    }
    el.dataset.backend = b.backend;
    const opt = this.$('select[name=backend] option[value=webgpu]');
    opt.disabled = !hasWebGpu();
  },
};
