// Lazy start, shared by the components: the heavy work (the wasm module, a Web Worker, a model
// download) begins only when the element comes within MARGIN of the viewport, so a documentation
// page with a detector far down downloads nothing for it until the reader scrolls there.
// `loading="eager"` on the element (as on <img>; each component reads its own attribute) starts it
// at once; so does a browser without IntersectionObserver. An element that is never shown (display: none) never starts: call its
// `start()`.

/** How near the viewport an element starts (IntersectionObserver rootMargin). */
export const MARGIN = '200px';

/** Calls `start` once `el` is within MARGIN of the viewport (at once if `eager`); returns a function that stops watching. */
export function startWhenNear(el, start, eager = false) {
  if (eager || typeof IntersectionObserver !== 'function') {
    start();
    return () => {};
  }
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) { io.disconnect(); start(); }
  }, { rootMargin: MARGIN });
  io.observe(el);
  return () => io.disconnect();
}

/** A promise with its resolve and reject functions: a component's `ready`, made before it starts. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}
