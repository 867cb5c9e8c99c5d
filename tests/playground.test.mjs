// <qplay-playground>: the whole playground as one element, on the documentation page (which
// loads only www/embed.js): with hide="detector" just the explorer; added with hide="explorer"
// and model="face", just the detector, which finds the face; attributes reach the part.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, ARTIFACTS } from './browser.mjs';

let s;
before(async () => { s = await open('docs/embed.html'); });
after(async () => s && s.close());

test('qplay-playground: parts, hide, attributes passed on, ready', async () => {
  const pg = s.page.locator('#playground qplay-playground');
  await pg.scrollIntoViewIfNeeded(); // its parts start when they come near the viewport
  await pg.evaluate((el) => el.ready);
  const parts = await pg.evaluate((el) => [...el.shadowRoot.querySelectorAll('qplay-explorer, qplay-detector')].map((p) => p.localName));
  assert.deepEqual(parts, ['qplay-explorer']);
  const text = await pg.evaluate((el) => el.shadowRoot.querySelector('qplay-explorer').shadowRoot.textContent);
  assert.match(text, /0\.015686275/);
  await s.page.locator('#playground').screenshot({ path: `${ARTIFACTS}playground-explorer.png` });

  // A second one, added by script: the face detector only, score passed on and changed later.
  const r = await s.page.evaluate(async () => {
    const el = document.createElement('qplay-playground');
    el.id = 'pg2';
    el.setAttribute('hide', 'explorer');
    el.setAttribute('model', 'face');
    el.setAttribute('image', '../www/samples/astronaut.png');
    el.setAttribute('score', '0.6');
    document.body.append(el);
    el.scrollIntoView(); // its parts start when they come near the viewport
    await el.ready;
    const det = el.shadowRoot.querySelector('qplay-detector');
    el.setAttribute('score', '0.7');
    return { parts: el.shadowRoot.querySelectorAll('qplay-explorer').length, model: det.getAttribute('model'), score: det.getAttribute('score') };
  });
  assert.deepEqual(r, { parts: 0, model: 'face', score: '0.7' });
  await s.page.waitForFunction(() => {
    const det = document.getElementById('pg2').shadowRoot.querySelector('qplay-detector');
    return det.result && !det.running && det.result.detections?.some((d) => d.label === 'face');
  }, null, { timeout: 120_000 });
  await s.page.evaluate(() => document.getElementById('pg2').dispose());
  assert.equal(await s.page.evaluate(() => document.getElementById('pg2').shadowRoot.querySelectorAll('qplay-detector').length), 0);
  assert.deepEqual(s.errors, []);
  const origin = new URL(s.url).origin;
  assert.deepEqual(s.requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u)), []);
});
