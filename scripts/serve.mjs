// Static server for the playground: 127.0.0.1 only, cross-origin isolated (COOP/COEP, so wasm
// threads can be used) and a Content-Security-Policy that allows no origin but its own.
// `node scripts/serve.mjs [--port N] [--no-isolation]`; also imported by the browser tests.
// `--no-isolation` (isolate: false) leaves out COOP/COEP/CORP, as a plain static host does: the
// page then gets threads only through sw.js (www/threads.js).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.onnx': 'application/octet-stream',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.svg': 'image/svg+xml', '.webmanifest': 'application/manifest+json',
  '.y4m': 'video/x-raw', '.md': 'text/markdown; charset=utf-8', '.npy': 'application/octet-stream',
};
export const CSP = [
  "default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:", "media-src 'self' blob: mediastream:", "connect-src 'self' data: blob:",
  "worker-src 'self' blob:", "object-src 'none'", "base-uri 'self'", "frame-ancestors *",
].join('; ');

export function serve({ port = 8080, host = '127.0.0.1', root = ROOT, quiet = false, isolate = true } = {}) {
  const server = createServer(async (req, res) => {
    const headers = {
      ...(isolate ? {
        'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin',
      } : {}),
      'Content-Security-Policy': CSP, 'Cache-Control': 'no-cache',
    };
    try {
      const url = new URL(req.url, 'http://x');
      let path = normalize(join(root, decodeURIComponent(url.pathname)));
      if (path !== root && !path.startsWith(root + sep)) throw Object.assign(new Error('outside root'), { code: 'ENOENT' });
      let st = await stat(path);
      if (st.isDirectory()) { path = join(path, 'index.html'); st = await stat(path); }
      // Validators, so a revalidation (Cache-Control: no-cache, the service worker's pre-cache)
      // costs a 304, not the file again.
      const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
      const cache = { ETag: etag, 'Last-Modified': st.mtime.toUTCString() };
      if (req.headers['if-none-match']?.split(/\s*,\s*/).includes(etag)) {
        res.writeHead(304, { ...headers, ...cache });
        res.end();
        return;
      }
      const body = await readFile(path);
      // Content-Length: the page's download progress shows the total and a percentage.
      res.writeHead(200, { ...headers, ...cache, 'Content-Type': TYPES[extname(path)] || 'application/octet-stream', 'Content-Length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      res.writeHead(e.code === 'ENOENT' || e.code === 'EISDIR' ? 404 : 500, { ...headers, 'Content-Type': 'text/plain' });
      res.end(e.code === 'ENOENT' ? 'not found' : 'server error');
    }
  });
  return new Promise((ok, fail) => {
    const tryPort = (p, left) => {
      server.once('error', (e) => (e.code === 'EADDRINUSE' && left > 0 ? tryPort(p + 1, left - 1) : fail(e)));
      server.listen(p, host, () => {
        const url = `http://${host}:${server.address().port}/`;
        if (!quiet) console.log(`qplay is serving ${root} at ${url}${isolate ? '' : ' without COOP/COEP'}  (Ctrl-C to stop)`);
        ok({ server, url });
      });
    };
    tryPort(port, port === 0 ? 0 : 20);
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : Number(process.env.PORT || 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('serve: --port needs a number from 0 to 65535');
    process.exit(2);
  }
  serve({ port, isolate: !process.argv.includes('--no-isolation') });
}
