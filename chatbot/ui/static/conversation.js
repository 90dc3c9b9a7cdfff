// js_on_load of the conversation: a citation is shown here (its source card highlighted); examples, ratings,
// comments and "open document" are sent to the server as events.
// Scroll the conversation pane (not the page) so that `el` is in view.
const pane = element.closest('#cb-conversation') || element.parentElement;
const reveal = (el, top) => {
  const box = el.getBoundingClientRect();
  const view = pane.getBoundingClientRect();
  if (top || box.top < view.top) pane.scrollTop += box.top - view.top - 8;
  else if (box.bottom > view.bottom) pane.scrollTop += Math.min(box.bottom - view.bottom + 8, box.top - view.top - 8);
};

const showCitation = (cite) => {
  const turn = cite.closest('.cb-turn');
  if (!turn) return;
  turn.querySelectorAll('.cb-active').forEach((el) => el.classList.remove('cb-active'));
  cite.classList.add('cb-active');
  const card = turn.querySelector('.cb-source[data-n="' + cite.dataset.n + '"]');
  if (card) {
    card.classList.add('cb-active');
    reveal(card, false);
  }
};

// The cited sentence of the marker under the pointer (or keyboard focus), in one box fixed to the window: placed
// above the marker, or below it near the window's top, and kept inside the window, so no scrolling pane clips it.
const tip = document.body.querySelector(':scope > .cb-tip') || document.body.appendChild(document.createElement('div'));
tip.className = 'cb-tip';
tip.setAttribute('aria-hidden', 'true');  // the marker's aria-label already reads the sentence
tip.hidden = true;
let tipFor = null;  // the marker the box belongs to
const showTip = (cite) => {
  tipFor = cite;
  tip.textContent = cite.dataset.tip;
  tip.hidden = false;
  const gap = 8;
  const room = document.documentElement;
  const at = cite.getBoundingClientRect();
  const w = tip.offsetWidth, h = tip.offsetHeight;
  let top = at.top - gap - h;
  if (top < gap) top = Math.min(at.bottom + gap, room.clientHeight - gap - h);
  const left = Math.min(Math.max(gap, at.left + at.width / 2 - w / 2), room.clientWidth - gap - w);
  tip.style.top = Math.max(gap, top) + 'px';
  tip.style.left = Math.max(gap, left) + 'px';
};
const hideTip = () => { tip.hidden = true; tipFor = null; };
// Scrolling moves the box with its marker while the marker is in the pane, and hides it once the marker is not.
const followTip = () => {
  if (!tipFor) return;
  const at = tipFor.getBoundingClientRect(), view = pane.getBoundingClientRect();
  if (tipFor.isConnected && at.bottom > view.top && at.top < view.bottom) showTip(tipFor);
  else hideTip();
};
const tipOf = (node) => (node && node.closest ? node.closest('.cb-cite[data-tip]') : null);
element.addEventListener('mouseover', (event) => { const cite = tipOf(event.target); if (cite) showTip(cite); });
element.addEventListener('mouseout', (event) => {
  const cite = tipOf(event.target);
  if (cite && !cite.contains(event.relatedTarget)) hideTip();
});
element.addEventListener('focusin', (event) => { const cite = tipOf(event.target); if (cite) showTip(cite); });
element.addEventListener('focusout', (event) => { if (tipOf(event.target)) hideTip(); });
pane.addEventListener('scroll', followTip, { passive: true });
window.addEventListener('scroll', followTip, { passive: true });
window.addEventListener('resize', hideTip);

element.addEventListener('click', (event) => {
  const cite = event.target.closest('.cb-cite[data-n]');
  if (cite) {
    showCitation(cite);
    return;
  }
  const button = event.target.closest('[data-action]');
  if (!button) return;
  const d = button.dataset;
  if (d.action === 'example') {
    trigger('ask_example', { text: d.text });
  } else if (d.action === 'rate') {
    trigger('rate', { turn: d.turn, rating: Number(d.rating) });
  } else if (d.action === 'comment') {
    const box = element.querySelector('textarea[data-turn="' + d.turn + '"]');
    trigger('comment', { turn: d.turn, text: box ? box.value : '' });
  } else if (d.action === 'open_doc') {
    trigger('open_doc', {
      doc_id: d.doc, start: Number(d.start), end: Number(d.end),
      sentence_start: Number(d.sentenceStart ?? d.start), sentence_end: Number(d.sentenceEnd ?? d.end),
    });
  }
});

// A new question scrolls the pane to it, even when the reader had scrolled up to an older answer.
let turns = element.querySelectorAll('.cb-turn').length;
watch('value', () => {
  hideTip();  // its marker may be gone
  const all = element.querySelectorAll('.cb-turn');
  if (all.length > turns) reveal(all[all.length - 1], true);
  turns = all.length;
});
