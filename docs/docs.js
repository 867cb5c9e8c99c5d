// The documentation page's own script: a copy button on every snippet, and iframes sized to
// their content (the embedded page posts {type: 'qplay-resize', height}).
for (const pre of document.querySelectorAll('pre.snippet')) {
  const box = document.createElement('div');
  box.className = 'snippet-box';
  pre.replaceWith(box);
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'copy';
  button.textContent = 'Copy';
  button.setAttribute('aria-label', 'copy this snippet');
  box.append(pre, button);
  button.addEventListener('click', async () => {
    const text = pre.textContent;
    let ok = false;
    try { await navigator.clipboard.writeText(text); ok = true; } catch {
      // No clipboard permission (or not a secure context): select the text and use the old command.
      const range = document.createRange();
      range.selectNodeContents(pre);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      try { ok = document.execCommand('copy'); } catch { ok = false; }
    }
    button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
    setTimeout(() => { button.textContent = 'Copy'; }, 1600);
  });
}

addEventListener('message', (e) => {
  if (e.origin !== location.origin || e.data?.type !== 'qplay-resize') return;
  for (const f of document.querySelectorAll('iframe')) {
    if (f.contentWindow === e.source) f.style.height = `${e.data.height}px`;
  }
});
