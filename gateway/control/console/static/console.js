// The console's live updates: the server sends the parts of the page whose HTML changed (server-sent events).
// Buttons only fill the action form; the action is the form's POST, with its CSRF token and a typed reason.
"use strict";
(function () {
  const events = new EventSource("/events");
  events.onmessage = function (e) {
    const parts = JSON.parse(e.data);
    for (const id of Object.keys(parts)) {
      const el = document.getElementById(id);
      if (el) el.innerHTML = parts[id];
    }
    document.body.dataset.updated = String(Date.now());
  };
  events.addEventListener("signed-out", function () {
    events.close();
    window.location = "/login";
  });
  document.addEventListener("click", function (e) {
    const b = e.target.closest("button[data-act]");
    const form = document.getElementById("action-form");
    if (!b || !form) return;
    form.elements.action.value = b.dataset.act;
    form.elements.target.value = b.dataset.target || "";
    form.elements.code.value = b.dataset.code || "";
    document.getElementById("action-what").textContent = b.dataset.label + " " + (b.dataset.target || "");
    form.elements.why.focus();
  });
})();
