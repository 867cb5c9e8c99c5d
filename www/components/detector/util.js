// Small helpers shared by the detector's modules.

export function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

/** An SQNR in dB with one decimal ('∞' for an exact layer, '–' when absent). */
export const db = (v) => (typeof v === 'number' ? (Number.isFinite(v) ? v.toFixed(1) : '∞') : '–');

/** A detection score as a percentage (`digits` decimals); a score above 1, which is no
 * probability, as the number it is ("score 1.88"). */
export const scoreText = (v, digits = 0) => (v <= 1 ? `${(v * 100).toFixed(digits)} %` : `score ${v.toPrecision(3)}`);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Resolves after the next paint (a timer where the page is hidden and animation frames stop). */
export const nextPaint = () => new Promise((r) => { const t = setTimeout(r, 100); requestAnimationFrame(() => { clearTimeout(t); r(); }); });

export function hasWebGpu() { return typeof navigator !== 'undefined' && 'gpu' in navigator; }

// COCO's 17-keypoint skeleton (Ultralytics' pose models): pairs of keypoint indices.
const COCO_SKELETON = [[15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6], [5, 7], [6, 8],
  [7, 9], [8, 10], [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6]];

/** A detection's keypoints (and, for 17, the COCO skeleton); points with a visibility below 0.5 are left out, as Ultralytics does. */
export function drawKeypoints(ctx, d, lw) {
  const seen = (i) => !d.keypoint_scores || d.keypoint_scores.length === 0 || d.keypoint_scores[i] >= 0.5;
  ctx.fillStyle = '#E69F00'; ctx.strokeStyle = '#E69F00'; ctx.lineWidth = Math.max(1, lw / 2);
  if (d.keypoints.length === 17 && d.keypoint_scores?.length === 17) {
    for (const [a, b] of COCO_SKELETON) {
      if (!seen(a) || !seen(b)) continue;
      ctx.beginPath(); ctx.moveTo(...d.keypoints[a]); ctx.lineTo(...d.keypoints[b]); ctx.stroke();
    }
  }
  d.keypoints.forEach(([kx, ky], i) => { if (seen(i)) { ctx.beginPath(); ctx.arc(kx, ky, lw, 0, 2 * Math.PI); ctx.fill(); } });
}
