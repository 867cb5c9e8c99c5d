// The playground page: wires the components together.
//
// Iframe mode: `index.html?embed=explorer&min=-2&max=2&bits=8` (or `?embed=detector&model=face`)
// keeps just that one component, maps the query parameters onto its attributes and drops the
// header, the other panel and the footer. The components are imported only after that, so the
// panel that is dropped never starts (no worker, no model download).
import { loadWasm } from './qplay.js';

/** Query parameters each component accepts, as attributes (the components' own names). */
export const EMBED_ATTRIBUTES = {
  explorer: ['min', 'max', 'bits', 'signed', 'symmetric', 'restricted', 'value', 'decimals', 'sample', 'preset'],
  detector: ['model', 'profile', 'image', 'score'],
};

const params = new URLSearchParams(location.search);
const embed = params.get('embed');
if (embed !== null) setUpEmbed(embed);
await import('./embed.js');
if (embed === null) loadWasm().then((w) => { document.getElementById('version').textContent = 'v' + w.version(); });

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
