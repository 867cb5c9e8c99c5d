// Shared helpers for the browser tests: serve the repo, launch the system Chromium headless
// through playwright-core (no browser download), collect console errors, save screenshots.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../scripts/serve.mjs';

export const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
mkdirSync(ARTIFACTS, { recursive: true });

export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

/** Starts the server (on `root`, the repository by default; `isolate: false`: without COOP/COEP) and a
 * browser (`webgpu: false`: without a WebGPU adapter; `context`: options for its page, such as
 * `serviceWorkers: 'block'`; `before(page)`: runs before the page is opened, e.g. to add an init
 * script or a route); returns { url, server, browser, page, errors, requests, close }. */
export async function open(path = '', { args = [], viewport = { width: 1280, height: 900 }, colorScheme = 'light', root, webgpu = true, isolate = true, context = {}, before } = {}) {
  const { server, url } = await serve({ port: 0, quiet: true, isolate, ...(root ? { root } : {}) });
  // webgpu: false leaves out --enable-unsafe-webgpu, so headless Chromium has no WebGPU adapter.
  const flags = CHROMIUM_FLAGS.filter((f) => webgpu || f !== '--enable-unsafe-webgpu');
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: [...flags, ...args] });
  const page = await browser.newPage({ viewport, colorScheme, ...context });
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('request', (r) => requests.push(r.url()));
  await before?.(page);
  await page.goto(url + path);
  return {
    url, server, browser, page, errors, requests,
    async close() { await browser.close(); await new Promise((r) => server.close(r)); },
  };
}
