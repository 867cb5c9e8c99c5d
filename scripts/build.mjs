// `npm run build [-- --out DIR]`: a static site in dist/ (or DIR) that any static host can serve:
// index.html, www/ (modules, CSS, components, worker, pkg/ wasm + bindings, models/, samples/) and
// docs/embed.html. Every URL in it is relative, so it works from any folder of any host; it needs
// no server logic (no CSP; threads need COOP/COEP, which sw.js adds where the host sends none).
// www/pkg-threads/ (the threaded wasm module) is copied when it was built.
// The wasm module is not rebuilt when www/pkg/ holds it; when it is missing this runs
// scripts/build-wasm.sh (which needs the Rust toolchain: `bash scripts/setup.sh build`).
// Prints the size of the playground's wasm + JS, raw and gzip (models and photos not counted), for
// a page without threads (the budget) and with them (the worker's threaded module beside the
// explorer's single-thread one).
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
  const sizes = { wasm: { raw: 0, gzip: 0, files: 0 }, js: { raw: 0, gzip: 0, files: 0 }, threads: { raw: 0, gzip: 0, files: 0 } };
  for (const f of code) {
    const bytes = readFileSync(join(out, f));
    const s = sizes[/^www[\\/]pkg-threads[\\/]/.test(f) ? 'threads' : extname(f) === '.wasm' ? 'wasm' : 'js'];
    s.raw += bytes.length;
    s.gzip += gzipSync(bytes, { level: 9 }).length;
    s.files += 1;
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
  log(`[build]   wasm + JS gzip: ${(total.gzip / 1e6).toFixed(3)} MB (budget ${(BUDGET_GZIP / 1e6).toFixed(1)} MB: ${total.gzip <= BUDGET_GZIP ? 'within' : 'OVER'})`);
  let isolated = null;
  if (sizes.threads.files) {
    row(`threaded (${sizes.threads.files} files)`, sizes.threads);
    // A cross-origin-isolated page loads the threaded module instead of the single-thread one, on
    // the main thread and in its workers alike (www/threads.js loadBindings, startWasm).
    const stJs = code.filter((f) => /^www[\\/]pkg[\\/].*\.js$/.test(f)).reduce((n, f) => n + gzipSync(readFileSync(join(out, f)), { level: 9 }).length, 0);
    isolated = total.gzip - sizes.wasm.gzip - stJs + sizes.threads.gzip;
    log(`[build]   isolated page (threaded module instead of www/pkg/): ${(isolated / 1e6).toFixed(3)} MB gzip (budget ${(BUDGET_GZIP / 1e6).toFixed(1)} MB: ${isolated <= BUDGET_GZIP ? 'within' : 'OVER'})`);
  } else log('[build]   www/pkg-threads/ was not built: the site runs one thread (bash scripts/build-wasm.sh builds it)');
  const shown = relative(process.cwd(), out);
  log(`[build] serve ${shown && !shown.startsWith('..') ? shown : out}/ with any static server; the documentation page is docs/embed.html`);
  return { out, files, sizes, total, isolated };
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
