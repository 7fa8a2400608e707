// tunebook's figures, shared by the dashboard and the HTML report: each div.figure holds its Plotly
// figure as JSON; this draws it (dark template when the system asks for it), sends a click on a point
// to its trial, and gives curve figures smoothing and log-y controls. window.tunebookPlots.update()
// redraws a figure in place (Plotly.react), keeping the user's zoom.
(function () {
  "use strict";
  // the mode bar, explicitly: nothing a user studies is one click from a third party (no Plotly logo, no
  // "Share chart"/Chart Studio upload, no "Edit in Chart Studio" link)
  // (figures.PLOTLY_CONFIG, set by the page; this copy only if a page forgets it)
  var CONFIG = window.TUNEBOOK_PLOTLY_CONFIG || { responsive: true, displaylogo: false, showSendToCloud: false,
    modeBarButtonsToRemove: ["sendDataToCloud", "sendChartToCloud", "editInChartStudio"] };
  var dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function isDark() { return !!(dark && dark.matches); }

  // the figure fills its box: the box's height comes from the spec (once, as CSS), Plotly sizes to the box
  // (a layout height would overflow the box after a resize and cover what follows)
  function themed(layout) {
    var out = Object.assign({ autosize: true }, layout || {});
    delete out.width;
    delete out.height;
    if (isDark() && window.TUNEBOOK_DARK_TEMPLATE) {
      out.template = window.TUNEBOOK_DARK_TEMPLATE;
      out.paper_bgcolor = "#16191d";
      out.plot_bgcolor = "#16191d";
    }
    if (window.innerWidth < 600) {
      out.margin = Object.assign({}, out.margin || {}, { l: 45, r: 8 });
    }
    return out;
  }

  // exponential moving average over the finite values, as TensorBoard's smoothing slider does
  function smooth(values, weight) {
    if (!weight) { return values; }
    var last = null, out = [];
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out.push(v); continue; }
      last = last === null ? v : last * weight + (1 - weight) * v;
      out.push(last);
    }
    return out;
  }

  function trialUrl(number) {
    var base = document.body.dataset.trialUrl;
    if (base) { return base.replace("{number}", String(number)); }
    return document.getElementById("trial-" + number) ? "#trial-" + number : null;
  }

  function figureData(div) {
    var spec = JSON.parse(div.querySelector('script[type="application/json"]').textContent);
    var controls = div.tbControls;
    if (controls && spec.data) {
      spec.data.forEach(function (trace) {
        if (trace.mode === "lines" && trace.y && !trace.tbRaw) {
          trace.y = smooth(trace.y, controls.smoothing);
        }
      });
      spec.layout = spec.layout || {};
      spec.layout.yaxis = Object.assign({}, spec.layout.yaxis || {});
      if (controls.logY) {
        spec.layout.yaxis.type = "log";
        delete spec.layout.yaxis.range;
        spec.layout.yaxis.autorange = true;
      }
    }
    return spec;
  }

  // the user's zoom (ranges they set) survives a redraw: copy them onto the new layout
  function keepZoom(div, layout) {
    var old = div.layout || {};
    Object.keys(old).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key) && old[key] && old[key].autorange === false && div.tbZoomed && div.tbZoomed[key]) {
        layout[key] = Object.assign({}, layout[key] || {}, { range: old[key].range.slice(), autorange: false });
      }
    });
    return layout;
  }

  function addControls(div) {
    if (div.dataset.kind !== "curves" && div.dataset.kind !== "curve") { return; }
    var box = document.createElement("div");  // the grid item: the controls above the figure
    box.className = "figure-box";
    div.parentNode.insertBefore(box, div);
    box.appendChild(div);
    var bar = document.createElement("div");
    bar.className = "curve-controls";
    bar.innerHTML = '<label>smoothing <input type="range" class="smoothing" min="0" max="0.99" step="0.01" value="0"></label>' +
      ' <label><input type="checkbox" class="log-y"> log y</label>';
    div.parentNode.insertBefore(bar, div);
    div.tbControls = { smoothing: 0, logY: false };
    function apply() {
      div.tbControls.smoothing = parseFloat(bar.querySelector(".smoothing").value);
      div.tbControls.logY = bar.querySelector(".log-y").checked;
      div.tbZoomed = {};
      var spec = figureData(div);
      Plotly.react(div, spec.data, themed(spec.layout), CONFIG);
    }
    bar.querySelector(".smoothing").addEventListener("input", apply);
    bar.querySelector(".log-y").addEventListener("change", apply);
  }

  function sizeBox(div, layout) {
    if (layout && layout.height && !div.dataset.height) {
      div.dataset.height = String(layout.height);
      div.style.height = layout.height + "px";
    }
  }

  // a box that changes size (window resize, phone rotation, grid reflow): the figure follows it
  var resizer = window.ResizeObserver ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var div = entry.target;
      if (div.dataset.rendered && div.offsetParent !== null) { Plotly.Plots.resize(div); }
    });
  }) : null;

  function draw(div) {
    var holder = div.querySelector('script[type="application/json"]');
    if (!holder || div.dataset.rendered) { return; }
    addControls(div);
    var spec = figureData(div);
    sizeBox(div, spec.layout);
    Plotly.newPlot(div, spec.data, themed(spec.layout), CONFIG);
    if (resizer) { resizer.observe(div); }
    div.dataset.rendered = "1";
    div.tbZoomed = {};
    div.on("plotly_relayout", function (change) {
      Object.keys(change).forEach(function (key) {
        var m = /^([xy]axis\d*)\.(range|autorange)/.exec(key);
        if (m) { div.tbZoomed[m[1]] = m[2] === "range"; }
      });
    });
    div.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      var data = point && point.customdata;
      var number = Array.isArray(data) ? data[0] : data;
      if (typeof number !== "number") { return; }
      var url = trialUrl(number);
      if (url) { window.location.href = url; }
    });
  }

  // a figure whose JSON changed: redraw in place, zoom kept
  function update(div, json) {
    var holder = div.querySelector('script[type="application/json"]');
    if (!holder) { return; }
    if (holder.textContent === json) { return; }
    holder.textContent = json;
    if (!div.dataset.rendered) { draw(div); return; }
    var spec = figureData(div);
    Plotly.react(div, spec.data, keepZoom(div, themed(spec.layout)), CONFIG);
  }

  function renderAll(root) {
    (root || document).querySelectorAll("div.figure").forEach(draw);
  }

  if (dark && dark.addEventListener) {
    dark.addEventListener("change", function () {
      document.querySelectorAll("div.figure[data-rendered]").forEach(function (div) {
        var spec = figureData(div);
        Plotly.react(div, spec.data, keepZoom(div, themed(spec.layout)), CONFIG);
      });
    });
  }
  window.tunebookPlots = { render: renderAll, update: update, draw: draw };
  if (window.Plotly) { renderAll(document); }
})();
