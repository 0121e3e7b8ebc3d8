// A ticket page's conversation: poll <base>/messages.json?after=<last id> every few seconds and
// append new messages, so a reply from support appears without reloading. Mail text is only
// ever set with textContent; only support's replies come as HTML, sanitised by the server.
(function () {
  "use strict";
  const thread = document.querySelector("[data-messages-url]");
  if (!thread || !window.fetch) return;
  const url = thread.getAttribute("data-messages-url");
  const list = document.getElementById("thread-messages");
  const live = document.getElementById("thread-live");
  const base = url.replace(/\/messages\.json$/, "");
  const PERIOD_MS = 5000;
  const MAX_PERIOD_MS = 60000;
  let after = Number(thread.getAttribute("data-after")) || 0;
  let period = PERIOD_MS;
  const STOP = {};

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatTime(iso) {
    const when = new Date(iso);
    return isNaN(when) ? iso : when.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function formatSize(bytes) {
    if (bytes < 1000) return bytes + " Bytes";
    if (bytes < 1000 * 1000) return (bytes / 1000).toFixed(1) + " kB";
    return (bytes / 1000 / 1000).toFixed(1) + " MB";
  }

  function render(m) {
    const article = el("article", "card msg msg-" + m.direction + " msg-new");
    article.id = "m" + m.id;
    const meta = el("p", "meta");
    const from = el("strong", "", m.from);
    from.id = "m" + m.id + "-from";
    article.setAttribute("aria-labelledby", from.id);
    const time = el("time", "", formatTime(m.created_at));
    time.dateTime = m.created_at;
    meta.append(from, " · ", time);
    if (m.html) {
      // Support's Markdown reply, sanitised by the server (nh3) exactly as the page renders it.
      // Parsed in an inert document (nothing in it runs), then its nodes moved into the page.
      const body = el("div", "body md");
      const parsed = new DOMParser().parseFromString(m.html, "text/html");
      body.append.apply(body, Array.from(parsed.body.childNodes));
      article.append(meta, body);
    } else {
      article.append(meta, el("pre", "body", m.text));
    }
    if (m.quoted) {
      const details = el("details", "quoted");
      details.append(el("summary", "", "Show quoted text"), el("pre", "body", m.quoted));
      article.append(details);
    }
    if (m.attachments && m.attachments.length) {
      const ul = el("ul", "attachments");
      ul.setAttribute("aria-label", "Attachments");
      m.attachments.forEach(function (a) {
        const li = el("li");
        const link = el("a", "", a.filename);
        link.href = base + "/attachments/" + encodeURIComponent(a.id);
        li.append(link, " ", el("span", "meta", "(" + formatSize(a.size) + ")"));
        ul.append(li);
      });
      article.append(ul);
    }
    return article;
  }

  function append(messages) {
    let fromSupport = 0;
    messages.forEach(function (m) {
      after = Math.max(after, m.id);
      if (document.getElementById("m" + m.id)) return;
      const empty = document.getElementById("thread-empty");
      if (empty) empty.remove();
      list.append(render(m));
      if (m.direction === "out") fromSupport += 1;
    });
    if (fromSupport) {
      live.textContent = fromSupport === 1 ? "A new message from support arrived."
                                           : fromSupport + " new messages from support arrived.";
    }
  }

  function poll() {
    if (document.hidden) {
      setTimeout(poll, period);
      return;
    }
    fetch(url + "?after=" + after, {credentials: "same-origin", cache: "no-store",
                                    headers: {"Accept": "application/json"}})
      .then(function (response) {
        if ([401, 403, 404, 410].indexOf(response.status) >= 0) throw STOP;  // link or session ended
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (messages) {
        append(messages);
        period = PERIOD_MS;
        setTimeout(poll, period);
      })
      .catch(function (error) {
        if (error === STOP) return;
        period = Math.min(period * 2, MAX_PERIOD_MS);
        setTimeout(poll, period);
      });
  }

  setTimeout(poll, PERIOD_MS);
})();
