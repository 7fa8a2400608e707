// Renders every figure from the JSON inside it, and keeps a running study's page current.
(function () {
  "use strict";

  function renderFigures(root) {
    root.querySelectorAll("div.figure").forEach(function (div) {
      var holder = div.querySelector('script[type="application/json"]');
      if (!holder || div.dataset.rendered) { return; }
      var spec = JSON.parse(holder.textContent);
      var layout = Object.assign({ autosize: true }, spec.layout || {});
      Plotly.newPlot(div, spec.data, layout, { responsive: true, displaylogo: false });
      div.dataset.rendered = "1";
    });
  }

  function watchStudy() {
    var study = document.getElementById("study");
    if (!study) { return; }
    var every = parseInt(study.dataset.refreshMs || "3000", 10);
    var signature = study.dataset.signature;
    function poll() {
      fetch(study.dataset.stateUrl, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) {
          if (!state) { return; }
          if (signature !== null && state.signature !== signature) {
            return fetch(window.location.href, { credentials: "same-origin" })
              .then(function (r) { return r.text(); })
              .then(function (html) {
                var doc = new DOMParser().parseFromString(html, "text/html");
                var fresh = doc.getElementById("live");
                if (fresh) {
                  document.getElementById("live").replaceWith(fresh);
                  renderFigures(fresh);
                  study = document.getElementById("study");
                  signature = study ? study.dataset.signature : null;
                }
              });
          }
        })
        .catch(function () { /* the server may be restarting: try again later */ })
        .finally(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, every);
  }

  renderFigures(document);
  watchStudy();
})();
