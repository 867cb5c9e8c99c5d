// Option lists the page shares with the core, in one place: the calibration methods (the core's
// `Calibration::ALL`, in its order, with its names and labels). `crate/core/tests/page_options.rs`
// checks this file, the URL codec's list (hash.js) and the detector's method picker against the
// core, so a method added there cannot be missing here.

/** The calibration methods: CLI/JSON name, label, short legend, and the charts' colour (Okabe–Ito). */
export const CALIBRATION_METHODS = [
  { name: 'minmax', label: 'MinMax', legend: 'MinMax', color: '#0072B2' },
  { name: 'ema', label: 'Moving-average MinMax', legend: 'EMA MinMax', color: '#56B4E9' },
  { name: 'percentile', label: 'Percentile 99.99', legend: 'Percentile', color: '#009E73' },
  { name: 'entropy', label: 'Entropy (KL)', legend: 'Entropy', color: '#D55E00' },
  { name: 'mse', label: 'MSE', legend: 'MSE', color: '#CC79A7' },
];

const by = (key) => Object.fromEntries(CALIBRATION_METHODS.map((m) => [m.name, m[key]]));
/** Method name → label, short legend, colour. */
export const METHOD_NAMES = by('label');
export const METHOD_LEGEND = by('legend');
export const METHOD_COLORS = by('color');
