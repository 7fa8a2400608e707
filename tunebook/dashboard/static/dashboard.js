// The dashboard's pages: the trial table pages, sorts and filters in place; tick two rows (or two
// studies) to compare; a running study's page redraws its figures in place (zoom kept) when it moves.
(function () {
  "use strict";

  function tableUrl(href) {
    var url = new URL(href, window.location.href);
    var page = url.pathname;
    url.pathname = page.replace(/\/?$/, "/table");
    return { fragment: url.toString(), page: new URL(page + url.search, window.location.href).toString() };
  }

  function ticked(root, selector) {
    return Array.from(root.querySelectorAll(selector)).filter(function (c) { return c.checked; }).map(function (c) { return c.value; });
  }

  function wireTable(section) {
    if (!section) { return; }
    var button = section.querySelector("button.compare-ticked");
    function refreshButton() {
      if (button) { button.disabled = ticked(section, "input.tick").length !== 2; }
    }
    section.querySelectorAll("input.tick").forEach(function (c) {
      if (window.tunebookTicks && window.tunebookTicks.indexOf(c.value) >= 0) { c.checked = true; }
      c.addEventListener("change", function () {
        window.tunebookTicks = ticked(section, "input.tick");
        refreshButton();
      });
    });
    refreshButton();
    if (button) {
      button.addEventListener("click", function () {
        var numbers = ticked(section, "input.tick");
        window.location.href = "/compare?study=" + encodeURIComponent(button.dataset.study) + "&trials=" + numbers.join(",");
      });
    }
    section.querySelectorAll("a.sort, a.page").forEach(function (a) {
      a.addEventListener("click", function (event) {
        event.preventDefault();
        loadTable(section, a.href);
      });
    });
    var form = section.querySelector("form.filter-form");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var params = new URLSearchParams(new FormData(form));
        Array.from(params.keys()).forEach(function (k) { if (!params.get(k)) { params.delete(k); } });
        loadTable(section, form.getAttribute("action") + "?" + params.toString());
      });
    }
  }

  function loadTable(section, href) {
    var urls = tableUrl(href);
    section.classList.add("loading");
    return fetch(urls.fragment, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        section.innerHTML = html;
        section.classList.remove("loading");
        history.replaceState(null, "", urls.page);
        wireTable(section);
      })
      .catch(function () { window.location.href = urls.page; });
  }

  function wireNotebook() {
    var button = document.querySelector("button.compare-studies");
    if (!button) { return; }
    var order = [];
    document.querySelectorAll("input.tick-study").forEach(function (c) {
      c.addEventListener("change", function () {
        order = order.filter(function (v) { return v !== c.value; });
        if (c.checked) { order.push(c.value); }
        button.disabled = order.length !== 2;
      });
    });
    button.addEventListener("click", function () {
      window.location.href = "/compare?baseline=" + encodeURIComponent(order[0]) + "&candidate=" + encodeURIComponent(order[1]);
    });
  }

  // a running study: swap the text parts, redraw the figures in place with Plotly.react
  function applyFresh(doc) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var fresh = doc.querySelector('[data-live="' + el.dataset.live + '"]');
      if (fresh && el.innerHTML !== fresh.innerHTML) {
        el.innerHTML = fresh.innerHTML;
        if (el.dataset.live === "table") { wireTable(el); }
      }
    });
    var holder = document.getElementById("figures");
    var freshFigures = doc.getElementById("figures");
    if (holder && freshFigures && window.tunebookPlots) {
      freshFigures.querySelectorAll("div.figure").forEach(function (f) {
        var json = f.querySelector('script[type="application/json"]').textContent;
        var div = document.getElementById(f.id);
        if (div && div.dataset.kind === f.dataset.kind) {
          window.tunebookPlots.update(div, json);
        } else if (!div) {
          var added = f.cloneNode(true);
          holder.appendChild(added);
          window.tunebookPlots.draw(added);
        }
      });
    }
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
          if (!state || state.signature === signature) { return; }
          return fetch(window.location.href, { credentials: "same-origin" })
            .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
            .then(function (html) {
              var doc = new DOMParser().parseFromString(html, "text/html");
              var fresh = doc.getElementById("study");
              if (!fresh) { return; }
              applyFresh(doc);
              signature = fresh.dataset.signature;
              study.dataset.signature = signature;
            });
        })
        .catch(function () { /* the server may be restarting: try again later */ })
        .finally(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, every);
  }

  wireTable(document.getElementById("trials-section"));
  wireNotebook();
  watchStudy();
})();
