// Keeps a run page current while the run is queued or running: polls the page's JSON twin and swaps in
// the live section (rendered and escaped by the server) when something happened. Stops once it ends.
(function () {
  "use strict";
  var box = document.getElementById("run-live");
  if (!box || box.dataset.live !== "yes") { return; }
  var url = "/web/runs/" + encodeURIComponent(box.dataset.run) + "/live.json";
  var seq = box.dataset.seq || "0";
  var delay = 2000;

  function poll() {
    fetch(url + "?seen=" + encodeURIComponent(seq), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) {
        if (body === null) { return; }
        if (body.html !== undefined) { box.innerHTML = body.html; }
        seq = String(body.seq);
        box.dataset.seq = seq;
        box.dataset.live = body.live ? "yes" : "no";
        delay = 2000;
        if (body.live) { window.setTimeout(poll, delay); }
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
