// The files a user gives the detector, chosen in the model picker or dropped on the component: a
// model (.onnx, .tflite), the files an ONNX model keeps its weights in (PyTorch's exporter writes
// `model.onnx.data` beside `model.onnx` by default), a profile .json, photos. A model's weight
// files come with it; given later, alone, they complete the model that asked for them.

import { BUILTIN, download } from './model-source.js';

const MODEL = /\.(onnx|tflite)$/i;

/** A weights file's location that stays beside the model (ONNX's rule: relative, no `..`). */
const beside = (loc) => loc !== '' && !/^[\\/]|[\\:]/.test(loc) && !loc.split('/').includes('..');

/** A file that is no model, profile or picture: weights beside a model. */
const isData = (f) => !MODEL.test(f.name) && !/\.json$/i.test(f.name) && !/^(image|video)\//.test(f.type);

export const fileMethods = {
  /** Dropped or chosen files: each model with the other files as its possible weight files, then profiles and photos. */
  async onDrop(files) {
    const data = files.filter(isData);
    const models = files.filter((f) => MODEL.test(f.name));
    for (const m of models) await this.loadFile(m, data);
    if (!models.length && data.length) {
      if (this.pendingModel) await this.loadFile(this.pendingModel.file, [...this.pendingModel.data, ...data]);
      else this.showError(`${data.map((f) => f.name).join(', ')}: drop an .onnx or .tflite model, a profile .json or an image`, 'bad-file');
    }
    for (const f of files) {
      if (/\.json$/i.test(f.name)) await this.loadProfileFile(f);
      else if (/^image\//.test(f.type)) await this.setImage(f);
    }
  },

  /** A downloaded ONNX model (`url`, not a built-in) whose weights are in files beside it: those
   * files downloaded from beside it (with progress; `signal` cancels) and put inside it. */
  async withExternalData(bytes, url, source, signal) {
    if (BUILTIN[source] || !/\.onnx$/i.test(new URL(url, document.baseURI).pathname)) return bytes;
    const { missing } = await this.engine.externalData(bytes, []);
    if (!missing.length) return bytes;
    const files = [];
    for (const loc of missing) {
      if (!beside(loc)) throw new Error(`its weights are in “${loc}”, outside the model's folder: refused`);
      const got = await download(new URL(loc, new URL(url, document.baseURI)).href, { signal, onprogress: (n, total) => this.downloadProgress(loc, n, total) });
      files.push({ name: loc, bytes: got.bytes });
    }
    return (await this.engine.externalData(bytes, files)).bytes;
  },

  /** Loads a model file; an ONNX model's weights in separate files are taken from `data` (Files) and put inside it first. */
  async loadFile(file, data = []) {
    let bytes = await file.arrayBuffer();
    if (/\.onnx$/i.test(file.name)) {
      let r;
      try {
        r = await this.engine.externalData(bytes, await Promise.all(data.map(async (f) => ({ name: f.name, bytes: await f.arrayBuffer() }))));
      } catch (e) {
        this.loadFailed(file.name, e.message, 'model-load');
        return;
      }
      if (r.missing.length) {
        // Kept, so that the missing file dropped (or chosen) next completes this model.
        this.pendingModel = { file, data };
        const names = r.missing.map((m) => `“${m}”`).join(', ');
        this.loadFailed(file.name, `its weights are in a separate file, ${names}, which was not given: choose the model and that file together, or drop ${names} now`, 'external-data');
        return;
      }
      if (r.bytes) bytes = r.bytes;
    }
    this.pendingModel = null;
    await this.loadBytes(bytes, null, file.name, { source: 'uploaded', path: file.name });
  },
};
