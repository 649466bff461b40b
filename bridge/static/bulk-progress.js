/* The bulk replay's progress without reloading the page (issue 19): every 2 seconds the
   numbers are read from the page's JSON state and only changed text is written, inside the
   polite live region, so screen readers hear the change and a typed cancel reason stays.
   Served from our own origin under the page's Content-Security-Policy (script-src 'self');
   without scripts the page keeps its "Aktualisieren" link. */
(function () {
  "use strict";
  var root = document.querySelector("[data-progress-url]");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-progress-url");
  var INTERVAL_MS = 2000;

  function setText(id, value) {
    var el = document.getElementById(id);
    var text = String(value);
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }

  function show(state) {
    setText("bulk-state", state.state_label);
    setText("bulk-processed", state.processed);
    setText("bulk-total", state.total);
    setText("bulk-delivered", state.delivered);
    setText("bulk-failed", state.failed);
    var bar = document.getElementById("bulk-bar");
    if (bar) {
      bar.max = state.total || 1;
      bar.value = state.processed;
      bar.textContent = state.processed + " von " + state.total;
    }
    if (!state.running) {
      var form = document.getElementById("bulk-cancel");
      if (form) {
        form.hidden = true;
      }
      setText("bulk-hint-text", "Die Sammel-Wiederholung ist beendet.");
    }
  }

  function tick() {
    window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        var type = answer.headers.get("Content-Type") || "";
        if (!answer.ok || type.indexOf("application/json") !== 0) {
          throw new Error("no state");
        }
        return answer.json();
      })
      .then(function (state) {
        show(state);
        if (state.running) {
          window.setTimeout(tick, INTERVAL_MS);
        }
      })
      .catch(function () {
        setText("bulk-hint-text", "Der Stand konnte gerade nicht gelesen werden; bitte aktualisieren.");
      });
  }

  setText("bulk-hint-text", "Die Zahlen aktualisieren sich von selbst.");
  window.setTimeout(tick, INTERVAL_MS);
})();
