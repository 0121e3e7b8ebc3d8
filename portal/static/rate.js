// A rating link's page: send the answer the person clicked in the mail at once, so one click is
// enough. A GET of the link never records (mail scanners fetch links unread); without this
// script the button does the same. Once per page load: going back to it does not send again.
(function () {
  "use strict";
  var form = document.getElementById("rate-form");
  if (!form || !form.hasAttribute("data-auto-submit")) return;
  var status = document.getElementById("rate-status");
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) return;     // restored from the back/forward cache: the person left it there
    if (status) status.hidden = false;
    form.submit();
  });
})();
