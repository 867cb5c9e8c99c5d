// The playground page: wires the components together.
import './components/qplay-explorer.js';
import './components/qplay-detector.js';
import { loadWasm } from './qplay.js';

loadWasm().then((w) => { document.getElementById('version').textContent = 'v' + w.version(); });
