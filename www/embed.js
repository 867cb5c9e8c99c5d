// The one module a documentation page includes: it registers <qplay-explorer>,
// <qplay-detector> and <qplay-playground> (all load the wasm module lazily, once, relative to
// this file).
//   <script type="module" src="PATH/TO/www/embed.js"></script>
// Re-exports the component classes and loadWasm for pages that want them.
export { QplayExplorer } from './components/qplay-explorer.js';
export { QplayDetector } from './components/qplay-detector.js';
export { QplayPlayground } from './components/qplay-playground.js';
export { loadWasm } from './qplay.js';
