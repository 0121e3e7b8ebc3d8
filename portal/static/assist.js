// Help with the answer (templates/web/agent/_similar.html): insert a similar ticket's resolution or a
// suggested reply into the reply box. Text only (value / textContent), never HTML. A hidden field
// "drafted" tells the server the reply began as a suggestion, so the history says so when it is sent.
(function () {
  "use strict";
  var box = document.getElementById("assist");
  var reply = document.getElementById("reply-text");
  if (!box || !reply || !reply.form) { return; }
  var status = document.getElementById("suggest-status");
  var linksBox = document.getElementById("suggest-links");

  // A sentence in the page's language from the box's data-i18n-* attribute ({name} placeholders
  // filled in as text), else the English fallback.
  function said(attribute, fallback, values) {
    var text = box.getAttribute(attribute) || fallback;
    return text.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values || {}, key) ? String(values[key]) : whole;
    });
  }

  function marker(value) {
    var input = reply.form.querySelector('input[name="drafted"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = "drafted";
      reply.form.appendChild(input);
    }
    input.value = value;
  }

  function insert(text, mark) {
    reply.value = reply.value.trim() ? reply.value.replace(/\s+$/, "") + "\n\n" + text : text;
    marker(mark);
    reply.focus();
  }

  function showLinks(links) {
    var list = linksBox.querySelector("ul");
    list.textContent = "";
    links.forEach(function (link) {
      var item = document.createElement("li");
      item.textContent = link;
      list.appendChild(item);
    });
    linksBox.hidden = links.length === 0;
  }

  reply.addEventListener("input", function () {
    if (!reply.value.trim()) { marker(""); }  // the draft was thrown away: the reply is the agent's own
  });

  box.querySelectorAll(".insert-resolution").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = button.parentNode.querySelector(".resolution").textContent;
      insert(text, "similar:" + button.getAttribute("data-ticket"));
      status.textContent = said("data-i18n-inserted", "Resolution of #{ticket} inserted: edit it before sending.",
                                {ticket: button.getAttribute("data-ticket")});
    });
  });

  var suggest = document.getElementById("suggest-reply");
  suggest.hidden = false;
  suggest.addEventListener("click", function () {
    suggest.disabled = true;
    status.textContent = said("data-i18n-drafting", "Drafting a reply…");
    fetch(box.getAttribute("data-suggest-url"), {
      method: "POST", credentials: "same-origin",
      headers: {"x-csrf-token": box.getAttribute("data-csrf"), "accept": "application/json"}
    }).then(function (answer) {
      if (!answer.ok) { throw new Error("HTTP " + answer.status); }
      return answer.json();
    }).then(function (draft) {
      showLinks(draft.flagged_links || []);
      if (!draft.text) {
        status.textContent = said("data-i18n-nothing", "Nothing to suggest: no resolved ticket like this one yet.");
        return;
      }
      insert(draft.text, draft.source + ":" + draft.based_on.join(","));
      status.textContent = draft.source === "mistral"
        ? said("data-i18n-mistral", "Reply drafted by Mistral: check and edit it before sending.")
        : said("data-i18n-similar", "The similar tickets' resolutions are in the reply box: edit them before sending.");
    }).catch(function (error) {
      status.textContent = said("data-i18n-failed", "No suggestion this time ({error}).", {error: error.message});
    }).then(function () { suggest.disabled = false; });
  });
}());
