// js_on_load of the reader: scroll the opened document to its highlighted span; "close" goes to the server.
const focusHighlight = () => {
  const body = element.querySelector('.cb-reader-body');
  const mark = element.querySelector('mark.cb-doc-hl');
  if (!body || !mark) return;
  body.scrollTop = Math.max(0, mark.offsetTop - body.clientHeight / 3);
  // A document that follows a new answer is not worth moving the page for (on a phone the reader is below the chat).
  if (body.dataset.followed) return;
  const box = element.getBoundingClientRect();
  if (box.top < 0 || box.top > window.innerHeight - 120) element.scrollIntoView({ block: 'start', behavior: 'smooth' });
};
watch('value', focusHighlight);
element.addEventListener('click', (event) => {
  if (event.target.closest('[data-action="close_doc"]')) trigger('close_doc', {});
});
