// Agent pages, progressively enhanced: every page works without this file.
// 1. A ticket's thread polls for new messages and appends them (text only, never HTML).
// 2. The stats page refreshes itself every 30 seconds.
(function () {
  "use strict";

  // A sentence in the page's language: the template puts it in a data-i18n-* attribute with {name}
  // placeholders; without one, the English fallback. Filled in as text, never HTML.
  function said(node, attribute, fallback, values) {
    var text = (node && node.getAttribute(attribute)) || fallback;
    return text.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values || {}, key) ? String(values[key]) : whole;
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderMessage(m, thread) {
    var side = m.direction === "note" ? "note" : (m.direction === "out" ? "out" : "in");
    var article = el("article", "card msg " + side);
    article.id = "m" + m.id;
    article.dataset.message = String(m.id);
    var meta = el("p", "meta");
    if (m.direction === "note") meta.appendChild(el("strong", "", said(thread, "data-i18n-note", "Internal note — never mailed.") + " "));
    meta.appendChild(document.createTextNode(m.author + " · " + m.created_at + " UTC"));
    article.appendChild(meta);
    article.appendChild(el("pre", "body", m.text));
    if (m.attachments && m.attachments.length) {
      var list = el("ul", "attachments");
      m.attachments.forEach(function (a) {
        var item = el("li");
        var link = el("a", "", a.name || "attachment");
        link.href = a.url;  // our own URL, built by the server
        link.setAttribute("download", "");
        item.appendChild(link);
        item.appendChild(el("span", "meta", " (" + said(thread, "data-i18n-bytes", "{size} bytes", {size: a.size}) + ")"));
        list.appendChild(item);
      });
      article.appendChild(list);
    }
    return article;
  }

  function pollThread(thread) {
    var url = thread.dataset.pollUrl;
    var after = Number(thread.dataset.after || 0);
    var status = document.getElementById("poll-status");
    var stopped = false;

    function tick() {
      if (stopped || document.hidden) return;
      fetch(url + "?after=" + after, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (response.status === 401 || response.status === 403 || response.status === 404) {
            stopped = true;
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (!data || !data.messages || !data.messages.length) return;
          data.messages.forEach(function (m) {
            if (document.getElementById("m" + m.id)) return;
            thread.insertBefore(renderMessage(m, thread), status);
            after = Math.max(after, m.id);
          });
          thread.dataset.after = String(after);
          if (status) {
            var n = data.messages.length;
            status.textContent = n === 1
              ? said(status, "data-i18n-new-one", "1 new message — reload to see formatting and field changes.")
              : said(status, "data-i18n-new-many", "{count} new messages — reload to see formatting and field changes.",
                     {count: n});
          }
        })
        .catch(function () { /* offline for a moment: try again next tick */ });
    }
    setInterval(tick, 5000);
  }

  function refreshSection(section) {
    var seconds = Number(section.dataset.refresh) || 30;
    setInterval(function () {
      if (document.hidden) return;
      fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          // Our own server-rendered page (autoescaped); only the same section is swapped in.
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(section.id);
          if (fresh) {
            var open = Array.prototype.map.call(section.querySelectorAll("details"), function (d) { return d.open; });
            section.replaceChildren.apply(section, Array.prototype.slice.call(fresh.childNodes).map(function (n) {
              return document.importNode(n, true);
            }));
            section.querySelectorAll("details").forEach(function (d, i) { d.open = !!open[i]; });
          }
        })
        .catch(function () {});
    }, seconds * 1000);
  }

  var thread = document.getElementById("thread");
  if (thread && thread.dataset.pollUrl) pollThread(thread);
  document.querySelectorAll("[data-refresh]").forEach(refreshSection);
})();
