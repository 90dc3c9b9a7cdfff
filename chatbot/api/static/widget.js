/* Chat widget for portal pages. One tag:
 *   <script src="http://SERVER:7860/widget.js" data-server="http://SERVER:7860" data-key="cbk_..."></script>
 * Attributes: data-server (default: where this script came from), data-key (an API key, when the server uses
 * keys), data-title, data-lang ("en" | "zh"; default: the browser's), data-open ("true": start open).
 * Answers stream from POST /api/v1/ask/stream (fetch + ReadableStream); the page's origin must be in the
 * server's cors_origins. Plain JavaScript, no build step, nothing loaded from anywhere but the server. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__soeChatWidget) { return; }
  window.__soeChatWidget = true;

  var server = (script.getAttribute("data-server") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var key = script.getAttribute("data-key") || "";
  var lang = (script.getAttribute("data-lang") || navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var L = {
    en: { title: "Ask the AI+ Initiative documents", open: "Ask a question about the documents", close: "Close",
          placeholder: "Ask in English or Chinese…", send: "Ask", searching: "Searching the documents…",
          writing: "Writing (checking citations next)…", sources: "Sources", chars: "characters",
          context: "Show in document", hide: "Hide", refused: "Not in the documents",
          quoted: "Quoted from the documents: the language model did not answer",
          network: "The server could not be reached", retry: "Try again in {s} s.",
          originRefused: "The server ({server}) is up but refused this page's origin ({origin}): its administrator "
                         + "must add {origin} to CHATBOT_CORS_ORIGINS.",
          unreachable: "The server ({server}) could not be reached, or it refused this page's origin ({origin}). "
                       + "If it is up, its administrator must add {origin} to CHATBOT_CORS_ORIGINS." },
    zh: { title: "上海国资国企 AI+ 文件问答", open: "就文件提问", close: "关闭", placeholder: "用中文或英文提问…",
          send: "提问", searching: "正在检索文件…", writing: "正在生成（随后核对引用）…", sources: "来源",
          chars: "字符", context: "在文件中查看", hide: "收起", refused: "文件中没有答案",
          quoted: "直接引用文件原文：语言模型没有响应", network: "无法连接服务器", retry: "请 {s} 秒后重试。",
          originRefused: "服务器（{server}）正常运行，但拒绝了本页面的来源（{origin}）：请管理员将 {origin} 加入 "
                         + "CHATBOT_CORS_ORIGINS。",
          unreachable: "无法连接服务器（{server}），或服务器拒绝了本页面的来源（{origin}）。如果服务器正常运行，"
                       + "请管理员将 {origin} 加入 CHATBOT_CORS_ORIGINS。" }
  }[lang];
  var title = script.getAttribute("data-title") || L.title;
  var history = [];
  var busy = false;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function headers() {
    var h = { "Content-Type": "application/json", "Accept": "text/event-stream" };
    if (key) { h.Authorization = "Bearer " + key; }
    return h;
  }

  // The widget lives in a shadow root, so the portal's styles and ours do not touch each other.
  var host = el("div");
  host.setAttribute("data-soe-chat", "");
  document.body.appendChild(host);
  var root = host.attachShadow({ mode: "open" });
  var link = el("link");
  link.rel = "stylesheet";
  link.href = server + "/widget.css";
  root.appendChild(link);

  var bubble = el("button", "cb-bubble", "?");
  bubble.type = "button";
  bubble.setAttribute("aria-label", L.open);
  bubble.title = L.open;
  var panel = el("section", "cb-panel");
  panel.hidden = true;
  panel.setAttribute("aria-label", title);
  var head = el("header", "cb-head");
  head.appendChild(el("span", "cb-title", title));
  var close = el("button", "cb-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", L.close);
  head.appendChild(close);
  var log = el("div", "cb-log");
  log.setAttribute("aria-live", "polite");
  var form = el("form", "cb-form");
  var input = el("textarea", "cb-input");
  input.rows = 2;
  input.placeholder = L.placeholder;
  input.setAttribute("aria-label", L.placeholder);
  input.maxLength = 1000;
  var send = el("button", "cb-send", L.send);
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(bubble);

  function setOpen(open) {
    panel.hidden = !open;
    bubble.setAttribute("aria-expanded", String(open));
    if (open) { input.focus(); }
  }
  bubble.addEventListener("click", function () { setOpen(panel.hidden); });
  close.addEventListener("click", function () { setOpen(false); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var question = input.value.trim();
    if (!question || busy) { return; }
    input.value = "";
    ask(question);
  });
  if (script.getAttribute("data-open") === "true") { setOpen(true); }

  function scroll() { log.scrollTop = log.scrollHeight; }

  // Answer text with each [n] as a button that points at source n.
  function renderAnswer(target, text, sourcesList) {
    target.textContent = "";
    var parts = text.split(/(\[\d+\])/);
    parts.forEach(function (part) {
      var m = /^\[(\d+)\]$/.exec(part);
      if (!m) { target.appendChild(document.createTextNode(part)); return; }
      var ref = el("button", "cb-ref", part);
      ref.type = "button";
      ref.setAttribute("data-n", m[1]);
      ref.addEventListener("click", function () {
        var item = sourcesList.querySelector('li[data-n="' + m[1] + '"]');
        if (item) { item.classList.add("cb-flash"); item.scrollIntoView({ block: "nearest" });
                    setTimeout(function () { item.classList.remove("cb-flash"); }, 1200); }
      });
      target.appendChild(ref);
    });
  }

  function renderSources(list, citations) {
    list.textContent = "";
    citations.forEach(function (c) {
      var item = el("li", "cb-source");
      item.setAttribute("data-n", String(c.n));
      var top = el("div", "cb-source-head");
      top.appendChild(el("span", "cb-n", "[" + c.n + "]"));
      top.appendChild(el("span", "cb-source-title", c.title || c.doc_id));
      item.appendChild(top);
      item.appendChild(el("blockquote", "cb-quote", c.text));
      var meta = el("div", "cb-meta", [c.outlet, c.date, L.chars + " " + c.start + "–" + c.end]
        .filter(Boolean).join(" · "));
      item.appendChild(meta);
      var more = el("button", "cb-context", L.context);
      more.type = "button";
      more.addEventListener("click", function () { toggleContext(item, more, c); });
      item.appendChild(more);
      list.appendChild(item);
    });
  }

  // A request that got no response: the browser reports a server that refused this page's origin (CORS) exactly
  // like one that is down, so a plain GET of /healthz that needs no CORS ("no-cors") tells the two apart.
  function unreachable() {
    var say = function (text) {
      return text.replace("{server}", server).replace(/\{origin\}/g, location.origin);
    };
    return fetch(server + "/healthz", { mode: "no-cors", cache: "no-store" })
      .then(function () { return say(L.originRefused); }, function () { return say(L.unreachable); });
  }

  var CONTEXT = 300;  // characters of the document shown, at most, on each side of a cited span
  // Where shown context may begin or end: after a sentence (or a line), else at a space or a Chinese comma, else
  // between two characters that are not both letters or digits (Chinese has no spaces between words).
  var SENTENCE = /[.!?;]+["'”’)\]]*\s+|[。！？；…]+["”’」』）]*\s*|\n\s*/g;
  var GAP = /[\s，、：,:]+/g;
  var WORDY = /[A-Za-z0-9\u00C0-\u024F\u0400-\u04FF'’-]/;

  function cuts(text, pattern) {  // [start, end] of each match of `pattern` that has text on both sides
    var out = [], m;
    pattern.lastIndex = 0;
    while ((m = pattern.exec(text))) {
      if (m.index > 0 && m.index + m[0].length < text.length) { out.push([m.index, m.index + m[0].length]); }
    }
    return out;
  }

  function splitsWord(text, i) { return WORDY.test(text.charAt(i - 1)) && WORDY.test(text.charAt(i)); }

  // Where the context shown before a span begins, in `text` (the document up to the span, cut short).
  function contextStart(text) {
    var at = (cuts(text, SENTENCE)[0] || cuts(text, GAP)[0] || [])[1];
    if (at !== undefined) { return at; }
    for (var i = 1; i < text.length; i++) { if (!splitsWord(text, i)) { return i; } }
    return text.length;
  }

  // Where the context shown after a span ends, in `text` (the document after the span, cut short).
  function contextEnd(text) {
    var sentences = cuts(text, SENTENCE);
    if (sentences.length) {
      var last = sentences[sentences.length - 1];
      return last[0] + text.slice(last[0], last[1]).replace(/\s+$/, "").length;
    }
    var gaps = cuts(text, GAP);
    if (gaps.length) { return gaps[gaps.length - 1][0]; }
    for (var i = text.length - 1; i > 0; i--) { if (!splitsWord(text, i)) { return i; } }
    return 0;
  }

  // Scroll the conversation (not the portal page) so that `node` is in view.
  function reveal(node) {
    var box = node.getBoundingClientRect(), view = log.getBoundingClientRect();
    if (box.bottom > view.bottom) { log.scrollTop += Math.min(box.bottom - view.bottom + 8, box.top - view.top - 8); }
    else if (box.top < view.top) { log.scrollTop -= view.top - box.top + 8; }
  }

  // The cited span inside its surrounding text, fetched from the document endpoint: whole sentences (or words)
  // around it, scrolled so that the highlighted span is in view.
  function toggleContext(item, button, c) {
    var shown = item.querySelector(".cb-doc");
    if (shown) { shown.remove(); button.textContent = L.context; return; }
    var start = Math.max(0, c.start - CONTEXT);
    var url = server + "/api/v1/documents/" + encodeURIComponent(c.doc_id) + "?start=" + start;
    fetch(url, { headers: key ? { Authorization: "Bearer " + key } : {} })
      .then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; }, function () {
          return { ok: false, body: null, status: r.status };
        });
      }, function () { return unreachable().then(function (message) { return { ok: false, message: message }; }); })
      .then(function (res) {
        var box = el("div", "cb-doc");
        if (!res.ok) {
          box.className = "cb-doc cb-error";
          box.textContent = res.message || (res.body && res.body.error && res.body.error.message) || ("HTTP " + res.status);
        } else {
          var text = res.body.text;
          var a = c.start - start, b = c.end - start;
          var from = start > 0 ? contextStart(text.slice(0, a)) : 0;
          var rest = text.slice(b, b + CONTEXT);
          var to = b + CONTEXT < text.length ? b + contextEnd(rest) : text.length;
          box.appendChild(document.createTextNode((start + from > 0 ? "…" : "") + text.slice(from, a)));
          box.appendChild(el("mark", "", text.slice(a, b)));
          box.appendChild(document.createTextNode(text.slice(b, to) + (to < text.length ? "…" : "")));
        }
        item.appendChild(box);
        button.textContent = L.hide;
        var mark = box.querySelector("mark");
        if (mark) { box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3); }
        reveal(box);
      });
  }

  // Why an answer is quotes (the LLM did not answer or stopped mid-answer): the label in the widget's language,
  // the server's notice in the answer's own language.
  function renderNotice(answer) {
    var note = el("div", "cb-notice");
    note.setAttribute("role", "note");
    note.appendChild(el("div", "cb-notice-label", L.quoted));
    if (answer.notice) {
      var why = el("div", "cb-notice-text", answer.notice);
      if (answer.language) { why.lang = answer.language; }
      note.appendChild(why);
    }
    return note;
  }

  function errorText(status, body, headersObj) {
    var message = (body && body.error && body.error.message) || ("HTTP " + status);
    var retry = headersObj && headersObj.get("Retry-After");
    if (retry && message.indexOf("Retry") < 0 && message.indexOf("again") < 0) {
      message += " " + L.retry.replace("{s}", retry);
    }
    return message;
  }

  // Reads "event:"/"data:" blocks from the response body as they arrive.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function flush(block) {
      var name = "message", data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (!line || line.charAt(0) === ":") { return; }
        var i = line.indexOf(":");
        var field = i < 0 ? line : line.slice(0, i);
        var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") { name = value; } else if (field === "data") { data.push(value); }
      });
      if (data.length) { onEvent(name, JSON.parse(data.join("\n"))); }
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { if (buffer.trim()) { flush(buffer); } return; }
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split(/\r?\n\r?\n/);
        buffer = parts.pop();
        parts.forEach(flush);
        return pump();
      });
    }
    return pump();
  }

  function ask(question) {
    busy = true;
    send.disabled = true;
    var mine = el("div", "cb-msg cb-user", question);
    log.appendChild(mine);
    var bot = el("div", "cb-msg cb-bot");
    var status = el("div", "cb-status", L.searching);
    var text = el("div", "cb-answer cb-draft");
    var sourcesHead = el("div", "cb-sources-head", L.sources);
    sourcesHead.hidden = true;
    var list = el("ol", "cb-sources");
    bot.appendChild(status);
    bot.appendChild(text);
    bot.appendChild(sourcesHead);
    bot.appendChild(list);
    log.appendChild(bot);
    scroll();
    var draft = "";
    var finished = false;

    function fail(message) {
      finished = true;
      status.remove();
      text.className = "cb-answer cb-error";
      text.textContent = message;
    }

    fetch(server + "/api/v1/ask/stream", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ question: question, history: history.slice(-6) })
    }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return null; })
          .then(function (body) { fail(errorText(response.status, body, response.headers)); });
      }
      return readEvents(response, function (name, data) {
        if (name === "sources") {
          status.textContent = data.relevant ? L.writing : L.searching;
        } else if (name === "draft") {
          draft += data.delta;
          text.textContent = draft;
          scroll();
        } else if (name === "answer") {
          finished = true;
          var a = data.answer;
          status.remove();
          text.className = "cb-answer cb-final" + (a.refused ? " cb-refused" : "");
          if (a.mode === "extractive") {
            bot.classList.add("cb-extractive");
            bot.insertBefore(renderNotice(a), text);
          }
          renderAnswer(text, a.answer, list);
          renderSources(list, a.citations || []);
          sourcesHead.hidden = !(a.citations && a.citations.length);
          history.push({ role: "user", content: question });
          history.push({ role: "assistant", content: a.answer });
          scroll();
        } else if (name === "error") {
          fail(data.message);
        }
      });
    }, function () {
      return unreachable().then(fail);  // no response at all
    }).catch(function () {
      fail(L.network + " (" + server + ").");  // the answer's stream broke off
    }).then(function () {
      if (!finished) { fail(L.network + "."); }
      busy = false;
      send.disabled = false;
      scroll();
    });
  }
})();
