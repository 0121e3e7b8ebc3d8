// The agent's workspace, progressively enhanced (every page works without this file):
// queue — shift-click ranges, live refresh, j/k/o/r/e; ticket page — presence ("X is viewing /
// typing"), the canned-reply picker and its "/" shortcut, r/n/e; both — "?" opens the help.
// Text from people is only ever set with textContent; swapped queue rows are our own
// server-rendered (autoescaped) HTML, parsed in an inert document.
(function () {
  "use strict";

  // A sentence in the page's language: the template puts it in a data-i18n-* attribute with {name}
  // placeholders; without one, the English fallback. Filled in as text (textContent), never HTML.
  function said(node, attribute, fallback, values) {
    var text = (node && node.getAttribute(attribute)) || fallback;
    return text.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values || {}, key) ? String(values[key]) : whole;
    });
  }

  function typingTarget(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  // ---- help ----------------------------------------------------------------------------------------
  var help = document.getElementById("shortcut-help");
  function showHelp() { if (help && !help.open && help.showModal) help.showModal(); }
  document.querySelectorAll("[data-shortcut-help]").forEach(function (b) { b.addEventListener("click", showHelp); });

  // ---- the queue -----------------------------------------------------------------------------------
  var table = document.getElementById("queue-table");
  if (table) queue(table);

  function queue(table) {
    var lastPicked = null;
    var current = -1;
    var count = document.getElementById("chosen-count");

    function rows() { return Array.prototype.slice.call(table.querySelectorAll("#queue-rows tr[data-ticket]")); }
    function boxes() { return Array.prototype.slice.call(table.querySelectorAll("#queue-rows input[name=ids]")); }
    function showCount() {
      var n = boxes().filter(function (b) { return b.checked; }).length;
      if (count) count.textContent = n ? said(count, "data-i18n-chosen", "{count} chosen", {count: n}) : "";
    }

    table.addEventListener("click", function (event) {
      var box = event.target;
      if (!box || box.name !== "ids") return;
      var all = boxes();
      if (event.shiftKey && lastPicked && all.indexOf(lastPicked) >= 0) {
        var a = all.indexOf(lastPicked), b = all.indexOf(box);
        all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (x) { x.checked = box.checked; });
      }
      lastPicked = box;
      showCount();
    });
    var pickAll = document.getElementById("pick-all");
    if (pickAll) pickAll.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = pickAll.checked; });
      showCount();
    });

    function focusRow(i) {
      var all = rows();
      if (!all.length) return;
      current = Math.max(0, Math.min(all.length - 1, i));
      all.forEach(function (r, j) { r.classList.toggle("current", j === current); });
      var link = all[current].querySelector("td.subject a");
      if (link) link.focus();
    }
    function currentRow() { var all = rows(); return current >= 0 ? all[current] : null; }

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typingTarget(event)) return;
      var row = currentRow();
      var id = row && row.getAttribute("data-ticket");
      if (event.key === "j") focusRow(current + 1);
      else if (event.key === "k") focusRow(current - 1);
      else if ((event.key === "o" || event.key === "Enter") && id) window.location.href = "/agent/tickets/" + id;
      else if (event.key === "r" && id) window.location.href = "/agent/tickets/" + id + "#reply";
      else if (event.key === "n" && id) window.location.href = "/agent/tickets/" + id + "#note";
      else if (event.key === "e" && id) closeTicket(id);
      else if (event.key === "?") showHelp();
      else return;
      event.preventDefault();
    });

    function closeTicket(id) {
      var bulk = document.getElementById("bulk");
      if (!bulk) return;
      boxes().forEach(function (b) { b.checked = b.value === id; });
      bulk.querySelector("[name=status]").value = "closed";
      bulk.submit();
    }

    // Live refresh: the same URL again; new and changed rows are swapped in, choices kept.
    var seconds = Number(table.getAttribute("data-live")) || 5;
    setInterval(function () {
      if (document.hidden) return;
      fetch(window.location.href, {credentials: "same-origin", cache: "no-store", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          var body = fresh.getElementById("queue-rows");
          var mine = document.getElementById("queue-rows");
          if (!body || !mine || (body.textContent === mine.textContent && sameRows(body, mine))) return;
          var chosen = boxes().filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
          var currentId = currentRow() && currentRow().getAttribute("data-ticket");
          mine.replaceChildren.apply(mine, Array.prototype.map.call(body.childNodes, function (n) {
            return document.importNode(n, true);
          }));
          boxes().forEach(function (b) { b.checked = chosen.indexOf(b.value) >= 0; });
          if (currentId) {
            var again = rows().map(function (r) { return r.getAttribute("data-ticket"); }).indexOf(currentId);
            current = again;
            rows().forEach(function (r, j) { r.classList.toggle("current", j === again); });
          }
          ["total", "status-counts"].forEach(function (name) {
            var from = fresh.querySelector("[data-testid=" + name + "]");
            var to = document.querySelector("[data-testid=" + name + "]");
            if (from && to) to.replaceChildren.apply(to, Array.prototype.map.call(from.childNodes, function (n) {
              return document.importNode(n, true);
            }));
          });
          showCount();
        })
        .catch(function () {});
    }, seconds * 1000);

    function sameRows(a, b) {
      function key(tbody) {
        return Array.prototype.map.call(tbody.querySelectorAll("tr"), function (r) {
          return (r.getAttribute("data-ticket") || "") + "@" + (r.getAttribute("data-updated") || "") + r.className;
        }).join(",");
      }
      return key(a) === key(b);
    }
  }

  // ---- one ticket ----------------------------------------------------------------------------------
  var presence = document.getElementById("presence");
  if (presence) ticketPage(presence);

  function ticketPage(presence) {
    var reply = document.getElementById("reply-text");
    var note = document.getElementById("note-text");
    var typingUntil = 0;
    if (reply) reply.addEventListener("input", function () { typingUntil = Date.now() + 8000; });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typingTarget(event)) return;
      if (event.key === "r" && reply) reply.focus();
      else if (event.key === "n" && note) note.focus();
      else if (event.key === "e") { var f = document.getElementById("close-form"); if (f) f.submit(); }
      else if (event.key === "?") showHelp();
      else return;
      event.preventDefault();
    });
    if (window.location.hash === "#reply" && reply) reply.focus();
    if (window.location.hash === "#note" && note) note.focus();

    // Presence: say every few seconds that this page is open (and whether its reply is being typed).
    var url = presence.getAttribute("data-presence-url");
    var csrf = presence.getAttribute("data-csrf");
    var lastTyping = null;
    function beat() {
      if (document.hidden) return;
      var typing = Date.now() < typingUntil;
      lastTyping = typing;
      fetch(url, {method: "POST", credentials: "same-origin", cache: "no-store",
                  headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json"},
                  body: JSON.stringify({typing: typing})})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          presence.textContent = data.others.map(function (p) {
            return p.typing ? said(presence, "data-i18n-typing", "{name} is typing a reply.", {name: p.name})
                            : said(presence, "data-i18n-viewing", "{name} is viewing.", {name: p.name});
          }).join(" ");
        })
        .catch(function () {});
    }
    beat();
    setInterval(beat, 3000);
    if (reply) reply.addEventListener("input", function () { if (lastTyping === false) beat(); });

    // Canned replies: the picker inserts the filled-in text at the cursor; "/" in an empty box opens it.
    var picker = document.getElementById("canned-picker");
    var choice = document.getElementById("canned-choice");
    if (picker && choice && reply) {
      picker.addEventListener("submit", function (event) {
        event.preventDefault();
        var renderUrl = picker.getAttribute("data-render-url").replace("{id}", encodeURIComponent(choice.value));
        fetch(renderUrl, {method: "POST", credentials: "same-origin",
                          headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                          body: JSON.stringify({ticket_id: Number(picker.getAttribute("data-ticket"))})})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            if (!data) return;
            var at = reply.selectionStart || 0;
            reply.value = reply.value.slice(0, at) + data.text + reply.value.slice(reply.selectionEnd || at);
            reply.focus();
            reply.selectionStart = reply.selectionEnd = at + data.text.length;
            typingUntil = Date.now() + 8000;
          })
          .catch(function () {});
      });
      reply.addEventListener("keydown", function (event) {
        var atLineStart = reply.selectionStart === 0 || reply.value.charAt(reply.selectionStart - 1) === "\n";
        if (event.key === "/" && atLineStart && !event.ctrlKey && !event.metaKey) {
          event.preventDefault();
          choice.focus();
        }
      });
      choice.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { event.preventDefault(); picker.requestSubmit(); }
      });
    }
  }
})();
