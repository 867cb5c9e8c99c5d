// `npm run build [-- --out DIR]`: a static site in dist/ (or DIR) that any static host can serve:
// index.html, www/ (modules, CSS, components, worker, pkg/ wasm + bindings, models/, samples/) and
// docs/embed.html. Every URL in it is relative, so it works from any folder of any host; it needs
// no server logic (no CSP; threads need COOP/COEP, which sw.js adds where the host sends none).
// www/pkg-threads/ (the threaded wasm module) and the relaxed SIMD twins of both (www/pkg-relaxed/,
// www/pkg-threads-relaxed/) are copied when they were built.
// The wasm module is not rebuilt when www/pkg/ holds it; when it is missing this runs
// scripts/build-wasm.sh (which needs the Rust toolchain: `bash scripts/setup.sh build`).
// Prints the size of the playground's wasm + JS, raw and gzip (models and photos not counted), for
// each page a browser can get: without threads (the budget), isolated (the threaded module instead),
// and both with the relaxed SIMD twin instead (a page loads one module: www/threads.js).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const MARKER = '.qplay-build';
/** Size budget for the playground's wasm + JS, gzip. */
export const BUDGET_GZIP = 1.5e6;

function fail(msg) {
  console.error(`build: ${msg}`);
  process.exit(2);
}

/** Every file under `dir`, as paths relative to it. */
function walk(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    return d.isDirectory() ? walk(p, base) : [relative(base, p)];
  });
}

/** URLs that start with "/" (or name another origin) break on a host that serves the site from a sub-folder. */
const ABSOLUTE = [
  [/\.html$/, /\b(?:src|href|action|poster|data)\s*=\s*["']\s*(?:\/(?!\/)|https?:|\/\/)/gi],
  [/\.m?js$/, /(?:\bimport\s*(?:[\w{}\s,*]+from\s*)?|\bimport\(\s*|\bnew\s+URL\(\s*|\bfetch\(\s*|\bnew\s+Worker\(\s*)["'`](?:\/|https?:)/g],
  [/\.css$/, /url\(\s*["']?(?:\/|https?:)/gi],
];

export function build({ out = join(ROOT, 'dist'), quiet = false } = {}) {
  const log = quiet ? () => {} : (m) => console.log(m);
  out = resolve(out);
  if (ROOT === out || ROOT.startsWith(out + sep) || out === resolve('/')) fail(`refusing to write into ${out}: it holds the repository`);
  for (const f of ['qplay_wasm_bg.wasm', 'qplay_wasm.js']) {
    if (!existsSync(join(ROOT, 'www/pkg', f))) {
      log(`[build] www/pkg/${f} is missing: building the wasm module (bash scripts/build-wasm.sh)`);
      try {
        execFileSync('bash', [join(ROOT, 'scripts/build-wasm.sh')], { cwd: ROOT, stdio: 'inherit' });
      } catch {
        fail('the wasm build failed: install the toolchain with `bash scripts/setup.sh build`, then run `bash scripts/build-wasm.sh`');
      }
      break;
    }
  }
  if (existsSync(out)) {
    const entries = readdirSync(out);
    if (entries.length && !entries.includes(MARKER) && out !== join(ROOT, 'dist')) fail(`${out} is not empty and was not written by this build: choose another --out`);
    rmSync(out, { recursive: true, force: true });
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, MARKER), 'written by scripts/build.mjs; the whole folder is replaced on the next build\n');
  cpSync(join(ROOT, 'index.html'), join(out, 'index.html'));
  cpSync(join(ROOT, 'sw.js'), join(out, 'sw.js'));
  for (const d of ['www', 'docs']) {
    cpSync(join(ROOT, d), join(out, d), { recursive: true, filter: (src) => !/(^|[\\/])(\.|__pycache__)/.test(relative(ROOT, src)) });
  }
  const files = walk(out).filter((f) => f !== MARKER);

  const bad = [];
  for (const f of files) {
    const rule = ABSOLUTE.find(([ext]) => ext.test(f));
    if (!rule) continue;
    // Snippets shown in <pre> are text for the reader, not URLs this page loads.
    const text = readFileSync(join(out, f), 'utf8').replace(/<pre\b[\s\S]*?<\/pre>/gi, '');
    for (const m of text.matchAll(rule[1])) bad.push(`${f}: ${m[0]}`);
  }
  if (bad.length) fail(`URLs must be relative for a static host; fix these in the source:\n  ${bad.join('\n  ')}`);

  // The playground's code: the wasm module and every JS module the page or the worker loads.
  const code = files.filter((f) => /^www[\\/]/.test(f) && /\.(wasm|m?js)$/.test(f));
  const moduleDir = (f) => f.split(/[\\/]/)[1].match(/^pkg(-threads)?(-relaxed)?$/)?.[0] ?? null;
  const zero = () => ({ raw: 0, gzip: 0, files: 0 });
  const sizes = { wasm: zero(), js: zero(), threads: zero(), modules: {} };
  for (const f of code) {
    const bytes = readFileSync(join(out, f));
    const dir = moduleDir(f);
    const add = (s) => { s.raw += bytes.length; s.gzip += gzipSync(bytes, { level: 9 }).length; s.files += 1; };
    if (dir) add(sizes.modules[dir] ??= zero());
    else add(sizes.js);
    if (dir === 'pkg' && extname(f) === '.wasm') add(sizes.wasm);
    else if (dir === 'pkg') add(sizes.js);
    if (dir === 'pkg-threads') add(sizes.threads);
  }
  const total = { raw: sizes.wasm.raw + sizes.js.raw, gzip: sizes.wasm.gzip + sizes.js.gzip };
  const all = files.reduce((n, f) => n + statSync(join(out, f)).size, 0);
  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`.padStart(12);
  log(`[build] wrote ${files.length} files (${(all / 1e6).toFixed(1)} MB with models and photos) to ${out}`);
  log('[build] the playground\'s code (models and photos not counted):');
  const row = (label, s) => log(`[build]   ${label.padEnd(18)} raw ${kb(s.raw)}   gzip ${kb(s.gzip)}`);
  row(`wasm (${sizes.wasm.files} file)`, sizes.wasm);
  row(`JS (${sizes.js.files} modules)`, sizes.js);
  row('wasm + JS', total);
  const within = (n) => `${(n / 1e6).toFixed(3)} MB gzip (budget ${(BUDGET_GZIP / 1e6).toFixed(1)} MB: ${n <= BUDGET_GZIP ? 'within' : 'OVER'})`;
  log(`[build]   wasm + JS gzip: ${within(total.gzip).replace(' gzip', '')}`);
  // A page loads one module folder instead of www/pkg/ (the main thread and its workers alike:
  // www/threads.js loadBindings, startWasm): its size is the JS less www/pkg/'s plus that folder.
  const pages = {};
  const base = total.gzip - sizes.modules.pkg.gzip;
  for (const [dir, label] of [['pkg-threads', 'isolated page (threaded module instead of www/pkg/)'], ['pkg-relaxed', 'relaxed SIMD page (www/pkg-relaxed/ instead)'], ['pkg-threads-relaxed', 'isolated relaxed SIMD page (www/pkg-threads-relaxed/ instead)']]) {
    const m = sizes.modules[dir];
    if (!m) continue;
    row(`${dir} (${m.files} files)`, m);
    pages[dir] = base + m.gzip;
    log(`[build]   ${label}: ${within(pages[dir])}`);
  }
  if (!sizes.modules['pkg-threads']) log('[build]   www/pkg-threads/ was not built: the site runs one thread (bash scripts/build-wasm.sh builds it)');
  if (!sizes.modules['pkg-relaxed']) log('[build]   www/pkg-relaxed/ was not built: the site runs SIMD128 only (bash scripts/build-wasm.sh builds it)');
  const isolated = pages['pkg-threads'] ?? null;
  const shown = relative(process.cwd(), out);
  log(`[build] serve ${shown && !shown.startsWith('..') ? shown : out}/ with any static server; the documentation page is docs/embed.html`);
  return { out, files, sizes, total, isolated, pages };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  let out;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out' && args[i + 1]) out = args[++i];
    else if (args[i].startsWith('--out=')) out = args[i].slice(6);
    else fail(`unknown argument ${args[i]}: usage \`npm run build [-- --out DIR]\``);
  }
  build({ out });
}
