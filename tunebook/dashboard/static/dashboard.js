// The dashboard's pages: the trial table pages, sorts and filters in place; tick rows to overlay trials (or two
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
      if (button) {
        var n = ticked(section, "input.tick").length;
        button.disabled = n < 2;
        button.textContent = n < 2 ? "overlay ticked trials" : "overlay " + n + " ticked trials";
      }
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
    section.querySelectorAll("form.jump-form").forEach(function (jump) {
      jump.addEventListener("submit", function (event) {
        event.preventDefault();
        loadTable(section, jump.getAttribute("action") + "?" + new URLSearchParams(new FormData(jump)).toString());
      });
    });
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
      .then(function (r) { return r.ok || r.status === 400 ? r.text() : Promise.reject(r.status); })
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
    window.tunebookStudyTicks = window.tunebookStudyTicks || [];
    function refresh() { button.disabled = window.tunebookStudyTicks.length !== 2; }
    document.querySelectorAll("input.tick-study").forEach(function (c) {
      c.checked = window.tunebookStudyTicks.indexOf(c.value) >= 0;
      c.addEventListener("change", function () {
        var order = window.tunebookStudyTicks.filter(function (v) { return v !== c.value; });
        if (c.checked) { order.push(c.value); }
        window.tunebookStudyTicks = order;
        refresh();
      });
    });
    refresh();
    if (!button.dataset.wired) {
      button.dataset.wired = "1";
      button.addEventListener("click", function () {
        var order = window.tunebookStudyTicks;
        window.location.href = "/compare?baseline=" + encodeURIComponent(order[0]) + "&candidate=" + encodeURIComponent(order[1]);
      });
    }
  }

  // the element that holds a figure in its container (curve figures sit in a box with their controls)
  function itemOf(div) {
    var box = div.parentNode;
    return box && box.classList && box.classList.contains("figure-box") ? box : div;
  }

  // a container of figures made to match a fresh copy: each figure updated by its id (zoom kept), figures
  // that appeared added at their place, figures that went removed
  function reconcileFigures(holder, fresh) {
    if (!window.tunebookPlots) { return; }
    var wanted = Array.from(fresh.querySelectorAll("div.figure"));
    var ids = wanted.map(function (f) { return f.id; });
    Array.from(holder.querySelectorAll("div.figure")).forEach(function (div) {
      if (ids.indexOf(div.id) < 0) { if (window.Plotly) { Plotly.purge(div); } itemOf(div).remove(); }
    });
    var previous = null;
    wanted.forEach(function (f) {
      var json = f.querySelector('script[type="application/json"]').textContent;
      var div = document.getElementById(f.id);
      if (div && div.dataset.kind === f.dataset.kind) {
        window.tunebookPlots.update(div, json);
      } else {
        if (div) { Plotly.purge(div); itemOf(div).remove(); }
        div = f.cloneNode(true);
        holder.insertBefore(div, previous ? itemOf(previous).nextSibling : holder.firstChild);
        window.tunebookPlots.draw(div);
      }
      var item = itemOf(div);
      var after = previous ? itemOf(previous).nextSibling : holder.firstElementChild;
      if (item !== after) { holder.insertBefore(item, after); }
      previous = div;
    });
    holder.querySelectorAll(".no-metric").forEach(function (p) { if (wanted.length) { p.remove(); } });
  }

  // a page that moved: swap its text parts, reconcile its figures
  function applyFresh(doc) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var fresh = doc.querySelector('[data-live="' + el.dataset.live + '"]');
      if (fresh && el.innerHTML !== fresh.innerHTML) {
        el.innerHTML = fresh.innerHTML;
        if (el.dataset.live === "table") { wireTable(el); }
        if (el.dataset.live === "notebook") { wireNotebook(); }
      }
    });
    document.querySelectorAll("[data-figures]").forEach(function (holder) {
      var fresh = doc.querySelector('[data-figures="' + holder.dataset.figures + '"]');
      if (fresh) { reconcileFigures(holder, fresh); }
    });
  }

  // the running trials' curves, redrawn on every poll (between two trials, the last curves stay; the
  // section hides once the study is done)
  function showRunning(json) {
    var section = document.getElementById("running-section");
    var div = document.getElementById("figure-running");
    if (!section || !div || !window.tunebookPlots || !json) { return; }
    section.hidden = false;
    if (!div.querySelector('script[type="application/json"]')) {
      var holder = document.createElement("script");
      holder.type = "application/json";
      div.appendChild(holder);
      div.classList.add("figure");
    }
    window.tunebookPlots.update(div, json);
  }

  // each study's checkpoint disk use, from the state: the text of every element that names the study
  function showDisk(disk) {
    if (!disk) { return; }
    document.querySelectorAll("[data-disk]").forEach(function (el) {
      var text = disk[el.dataset.disk];
      if (typeof text === "string" && el.textContent !== text) { el.textContent = text; }
    });
  }

  // every live page: poll its state; the running curves on each poll, the page's parts when the signature
  // moves; stop once the state says done (a finished study or trial), after one last refresh
  function watch() {
    var root = document.querySelector(".live-root[data-state-url]");
    if (!root || root.dataset.done) { return; }
    var every = parseInt(root.dataset.refreshMs || "2000", 10);
    var signature = root.dataset.signature;
    function refreshPage() {
      return fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok || r.status === 400 ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector(".live-root");
          if (!fresh) { return; }
          applyFresh(doc);
          signature = fresh.dataset.signature;
          root.dataset.signature = signature;
        });
    }
    function poll() {
      var again = true;
      fetch(root.dataset.stateUrl, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) {
          if (!state) { return; }
          showRunning(state.running);
          showDisk(state.disk);
          if (state.done) { again = false; root.dataset.done = "1"; }
          // the analysis a fetch would show (a large study's new one may still be computing)
          if ((state.analysed || state.signature) !== signature) { return refreshPage(); }
        })
        .catch(function () { /* the server may be restarting: try again later */ })
        .finally(function () {
          var updated = document.querySelector('[data-live="updated"]');
          if (updated) { updated.textContent = new Date().toTimeString().slice(0, 8); }
          if (again) { setTimeout(poll, every); } else if (root.dataset.done) {
            var section = document.getElementById("running-section");
            if (section) { section.hidden = true; }
          }
        });
    }
    setTimeout(poll, every);
  }

  wireTable(document.getElementById("trials-section"));
  wireNotebook();
  watch();
})();
