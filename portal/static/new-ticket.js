// The new-ticket form while typing: ask POST /api/tickets/classify (debounced) and pre-select its
// suggestion in the category and priority selects the person has not touched. Without this
// script the form works the same; the server then decides ("let us decide").
(function () {
  "use strict";
  const form = document.getElementById("new-ticket");
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
  if (!form || !window.fetch) return;

  const subject = form.elements.namedItem("subject");
  const description = form.elements.namedItem("description");
  const csrf = form.elements.namedItem("csrf_token");
  const note = document.getElementById("suggestion");
  const names = ["category", "priority"];
  const selects = {};
  const touched = {};
  const MIN_CHARS = 15;
  const DELAY_MS = 700;
  let timer = null;
  let inFlight = null;
  let lastAsked = "";

  names.forEach(function (name) {
    selects[name] = form.elements.namedItem(name);
    touched[name] = selects[name].value !== "";  // kept from a re-shown form: the person's choice
    selects[name].addEventListener("change", function () {
      touched[name] = true;
      showSuggested(name, false);
    });
  });

  function showSuggested(name, on) {
    const mark = document.getElementById(name + "-suggested");
    if (mark) mark.hidden = !on;
  }

  function optionLabel(select, value) {
    for (const option of select.options) {
      if (option.value === value) return option.textContent;
    }
    return null;
  }

  function apply(suggestion) {
    if (!suggestion || suggestion.fallback) return;
    const parts = [];
    names.forEach(function (name) {
      const value = suggestion[name];
      const label = optionLabel(selects[name], value);
      if (label === null) return;
      parts.push(name + " " + label.toLowerCase());
      if (!touched[name]) {
        selects[name].value = value;
        showSuggested(name, true);
      }
    });
    if (parts.length) {
      note.textContent = "Suggested from your description: " + parts.join(", ") + ". You can change it.";
    }
  }

  function ask() {
    const text = description.value.trim();
    if (text.length < MIN_CHARS || (touched.category && touched.priority)) return;
    const key = subject.value + "\n" + text;
    if (key === lastAsked) return;
    lastAsked = key;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    fetch("/api/tickets/classify", {
      method: "POST",
      credentials: "same-origin",
      signal: inFlight.signal,
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf ? csrf.value : ""},
      body: JSON.stringify({subject: subject.value.slice(0, 998), description: text.slice(0, 20000)})
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(apply).catch(function () { /* a suggestion is a nicety: stay quiet */ });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(ask, DELAY_MS);
  }

  subject.addEventListener("input", schedule);
  description.addEventListener("input", schedule);
})();
