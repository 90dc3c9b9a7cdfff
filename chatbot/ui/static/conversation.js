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
  const all = element.querySelectorAll('.cb-turn');
  if (all.length > turns) reveal(all[all.length - 1], true);
  turns = all.length;
});
