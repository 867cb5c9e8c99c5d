// The playground page: wires the components together.
//
// Iframe mode: `index.html?embed=explorer&min=-2&max=2&bits=8` (or `?embed=detector&model=face`)
// keeps just that one component, maps the query parameters onto its attributes and drops the
// header, the other panel and the footer. The components are imported only after that, so the
// panel that is dropped never starts (no worker, no model download). `hide=sample,restricted`
// becomes the component's `hide` attribute (the controls it hides).
//
// The full page keeps its settings in the URL fragment (format: www/hash.js): a link with one
// restores them, every change rewrites it with history.replaceState, and "Copy link" copies it.
import { loadWasm } from './qplay.js';
import { parseHash, serializeHash } from './hash.js';
import { isolate } from './threads.js';

/** sw.js's cache name (tests/offline.test.mjs checks that they agree). */
export const SW_CACHE = 'qplay-v5';
const SW_URL = new URL('../sw.js', import.meta.url);

/** Query parameters each component accepts, as attributes (the components' own names). */
export const EMBED_ATTRIBUTES = {
  explorer: ['min', 'max', 'bits', 'signed', 'symmetric', 'restricted', 'value', 'decimals', 'sample', 'logy', 'preset', 'hide'],
  detector: ['model', 'profile', 'image', 'score', 'backend', 'threads', 'hide'],
};

const params = new URLSearchParams(location.search);
const embed = params.get('embed');
// A static host without COOP/COEP: sw.js adds them, after one reload (threads.js); nothing starts before.
if (embed === null && await isolate(SW_URL)) await new Promise(() => {});
if (embed !== null) setUpEmbed(embed);
const restored = embed === null ? restoreFromHash() : null;
await import('./embed.js');
if (embed === null) {
  loadWasm().then((w) => { document.getElementById('version').textContent = 'v' + w.version(); });
  // Offline after the first visit (sw.js: network first, the cache when offline). Registered once
  // the detector's first model has loaded (or after 20 s), so that the worker's pre-cache finds
  // the model in the HTTP cache (a 304) instead of downloading it a second time beside the page.
  if ('serviceWorker' in navigator) {
    const det = document.querySelector('qplay-detector');
    // Then the models and photos, by the worker (sw.js 'precache-data').
    Promise.race([det?.ready, new Promise((r) => setTimeout(r, 20_000))]).then(() => seedCache(det)).then(() => navigator.serviceWorker.register(SW_URL))
      .then(() => navigator.serviceWorker.ready).then((reg) => reg.active?.postMessage({ type: 'precache-data' }))
      .catch((e) => console.warn('offline cache unavailable:', e.message));
  }
  keepHash(restored);
  setUpCopyLink();
}

function setUpEmbed(kind) {
  const main = document.querySelector('main');
  const names = EMBED_ATTRIBUTES[kind];
  document.documentElement.classList.add('embed');
  document.querySelector('header')?.remove();
  document.querySelector('footer')?.remove();
  if (!names) {
    main.replaceChildren(Object.assign(document.createElement('p'), {
      className: 'embed-error', role: 'alert',
      textContent: `embed=${kind} is not a component: use embed=explorer or embed=detector.`,
    }));
    return;
  }
  const el = document.createElement(`qplay-${kind}`);
  for (const name of names) if (params.has(name)) el.setAttribute(name, params.get(name));
  main.replaceChildren(el);
  document.title = `qplay ${kind}`;
  // Hosts can size the iframe to its content: the page posts its height whenever it changes.
  if (window.parent !== window) {
    let last = 0;
    new ResizeObserver(() => {
      const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (height !== last) { last = height; window.parent.postMessage({ type: 'qplay-resize', embed: kind, height }, '*'); }
    }).observe(document.documentElement);
  }
}

/** Before the components start: the fragment's settings become attributes; returns what needs the detector running. */
function restoreFromHash() {
  const { explorer, detector, notes } = parseHash(location.hash);
  const ex = document.querySelector('qplay-explorer');
  const det = document.querySelector('qplay-detector');
  for (const [k, v] of Object.entries(explorer)) ex.setAttribute(k, v);
  if (detector.model === 'uploaded') {
    notes.push('detector.model=uploaded: the link was made with a model file of yours. Files never leave your device, so choose it again under “…or your own model (ONNX or TFLite)”; the person detector is shown meanwhile.');
  } else if (detector.model) det.setAttribute('model', detector.model);
  if (detector.image === 'uploaded') {
    notes.push('detector.image=uploaded: the link was made with an image of yours; choose it again under “…or your own”.');
  } else if (detector.image) det.setAttribute('image', `www/samples/${detector.image}`);
  if (detector.score) det.setAttribute('score', detector.score);
  if (detector.backend) det.setAttribute('backend', detector.backend);
  if (detector.threads) det.setAttribute('threads', detector.threads);
  showNote(notes);
  const later = {};
  if (detector.method) later.method = detector.method;
  if (detector.perchannel) later.perChannel = detector.perchannel === 'true';
  if (detector.wbits) later.weightBits = Number(detector.wbits);
  if (detector.rounding) later.rounding = detector.rounding;
  if (detector.keep) later.keepFp32 = detector.keep;
  if (detector.lbits) later.layerBits = detector.lbits;
  if (detector.mixed) later.autoMixed = Number(detector.mixed);
  if (detector.mixedto) later.mixedTo = detector.mixedto;
  if (detector.overlay) later.overlay = detector.overlay === 'true';
  if (detector.logy) later.logY = detector.logy === 'true';
  // Editing the fragment by hand (in the address bar) restores it: replaceState does not fire this.
  addEventListener('hashchange', () => location.reload());
  return later;
}

/** A visible, dismissable note (never an alert) listing what in the link was ignored and why. */
function showNote(notes) {
  const note = document.getElementById('hash-note');
  if (!note || !notes.length) return;
  const text = note.querySelector('.text');
  text.replaceChildren('Some of this link’s settings were not used (the defaults are shown instead):',
    document.createElement('ul'));
  text.lastChild.append(...notes.map((n) => Object.assign(document.createElement('li'), { textContent: n })));
  note.hidden = false;
  note.querySelector('button').addEventListener('click', () => { note.hidden = true; });
}

/** After the components start: the detector's quantize settings, then every change rewrites the fragment. */
async function keepHash(later) {
  const ex = document.querySelector('qplay-explorer');
  const det = document.querySelector('qplay-detector');
  if (Object.keys(later).length) det.settings = later;
  await ex.ready;
  const write = () => {
    const hash = serializeHash(ex.settings, det.settings);
    if (location.hash.slice(1) !== hash) history.replaceState(history.state, '', `${location.pathname}${location.search}#${hash}`);
  };
  document.addEventListener('qplay-change', write);
}

function setUpCopyLink() {
  const button = document.getElementById('copy-link');
  const box = document.getElementById('copy-link-text');
  let timer;
  const done = (text) => {
    button.textContent = text;
    clearTimeout(timer);
    timer = setTimeout(() => { button.textContent = 'Copy link'; }, 2000);
  };
  button.addEventListener('click', async () => {
    const url = location.href;
    try {
      await navigator.clipboard.writeText(url);
      box.hidden = true;
      done('Copied');
    } catch {
      // No clipboard API (or no permission): the link in a selected text field, copied by execCommand if it can.
      box.value = url;
      box.hidden = false;
      box.focus();
      box.select();
      let ok = false;
      try { ok = document.execCommand('copy'); } catch { /* press Ctrl+C */ }
      done(ok ? 'Copied' : 'Press Ctrl+C');
    }
  });
}

/** Hands the model the page downloaded on this first visit to the service worker's cache, so that
 * its pre-cache (which skips what the cache holds) does not download it a second time: the
 * browser's HTTP cache cannot be relied on for a 12 MB file. */
async function seedCache(det) {
  try {
    if (!det?.modelBytes || !det.modelUrl || navigator.serviceWorker.controller) return;
    const cache = await caches.open(SW_CACHE);
    if (await cache.match(det.modelUrl)) return;
    await cache.put(det.modelUrl, new Response(det.modelBytes.slice(0), { headers: { 'Content-Type': 'application/octet-stream' } }));
  } catch (e) { console.warn('could not seed the offline cache:', e.message); }
}
