// The explore page's parallel coordinates: compact columns (tunebook.analysis.explore.parallel_spec) drawn
// as SVG in one innerHTML, one <path> per colour and hundred trials (never one element per trial): a
// 10,000-trial study draws in tens of milliseconds without a GPU. The lines live in a 1000x1000 viewBox
// stretched to the plot area (strokes stay one pixel wide), the labels are HTML placed in percent, so the
// figure follows its box through resizes without a redraw.
(function () {
  "use strict";
  var CHUNK = 100;  // trials per path: overlapping lines of different paths darken, as in a density

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // each group's lines as path data, a trial a "M x y L x y ..." run
  function groupLines(spec) {
    var d = spec.axes.length, n = spec.group.length, scale = spec.scale;
    var xs = spec.axes.map(function (_, i) { return d > 1 ? Math.round(i * 1000 / (d - 1)) : 500; });
    var per = spec.groups.map(function () { return []; });
    var columns = spec.columns;
    for (var t = 0; t < n; t++) {
      var s = "M" + xs[0] + " " + Math.round(1000 - columns[0][t] * 1000 / scale);
      for (var i = 1; i < d; i++) { s += "L" + xs[i] + " " + Math.round(1000 - columns[i][t] * 1000 / scale); }
      per[spec.group[t]].push(s);
    }
    return { xs: xs, per: per };
  }

  // the paths in drawing order: groups taken in turn a chunk at a time (none hidden beneath another); fifths
  // of the objective worst first, so the best lie on top
  function paths(spec, per) {
    var out = [];
    var order = spec.groups.map(function (_, g) { return g; });
    if (spec.by === "objective") {
      order.reverse().forEach(function (g) { chunked(out, spec, per, g, 0, per[g].length); });
      return out;
    }
    var rounds = Math.max.apply(null, per.map(function (p) { return Math.ceil(p.length / CHUNK); }));
    for (var r = 0; r < rounds; r++) {
      order.forEach(function (g) { chunked(out, spec, per, g, r * CHUNK, Math.min(per[g].length, (r + 1) * CHUNK)); });
    }
    return out;
  }

  function chunked(out, spec, per, g, from, to) {
    for (var a = from; a < to; a += CHUNK) {
      out.push('<path data-group="' + g + '" stroke="' + escapeHtml(spec.groups[g].color) + '" d="' +
        per[g].slice(a, Math.min(to, a + CHUNK)).join("") + '"/>');
    }
  }

  // axis names wrap within the space between two axes (a narrow screen), never over their neighbours; the
  // first and last may reach into the plot's margin (66 px left, 36 px right: explore.html) but not beyond
  function labels(spec, xs) {
    var html = "";
    var last = spec.axes.length - 1;
    var gap = last > 0 ? 100 / last : 100;  // % of the plot's width
    spec.axes.forEach(function (axis, i) {
      var left = (xs[i] / 10) + "%";
      var style = "left:" + left + ";max-width:calc(" + gap + "% - 6px)";
      if (last > 0 && i === 0) {
        style += ";max-width:min(calc(" + gap + "% - 6px), calc(" + gap / 2 + "% + 63px));transform:translateX(max(-50%, -66px))";
      } else if (last > 0 && i === last) {
        style += ";max-width:min(calc(" + gap + "% - 6px), calc(" + gap / 2 + "% + 33px));transform:translateX(min(-50%, calc(36px - 100%)))";
      }
      // a name breaks after its underscores first (weight_/decay), inside a word only if it must
      html += '<div class="pc-axis-label" style="' + style + '">' + escapeHtml(axis.label).replace(/_/g, "_<wbr>") + "</div>";
      axis.ticks.forEach(function (tick) {
        html += '<div class="pc-tick" style="left:' + left + ";top:" + ((1 - tick[0]) * 100) + '%">' + escapeHtml(tick[1]) + "</div>";
      });
    });
    return html;
  }

  // room under the plot for the axis names, however many lines they wrapped to
  function fitNames(div) {
    var plot = div.querySelector(".pc-plot");
    var tallest = 0;
    div.querySelectorAll(".pc-axis-label").forEach(function (l) { tallest = Math.max(tallest, l.offsetHeight); });
    var margin = Math.max(24, tallest + 14) + "px";
    if (plot && plot.style.marginBottom !== margin) { plot.style.marginBottom = margin; }
  }

  function draw(div) {
    var holder = div.querySelector('script[type="application/json"]');
    if (!holder || div.dataset.drawn) { return; }
    var spec = JSON.parse(holder.textContent);
    var lines = groupLines(spec);
    var opacity = spec.group.length > 2000 ? 0.15 : spec.group.length > 200 ? 0.3 : 0.7;  // dense: darker where lines crowd
    var legend = spec.groups.map(function (g, i) {
      return '<span class="pc-key" data-group="' + i + '"><span class="swatch" style="color:' + escapeHtml(g.color) + '">■</span> ' +
        escapeHtml(g.label) + " (" + g.count + ")</span>";
    }).join(" ");
    var axes = lines.xs.map(function (x) { return '<line class="pc-axis" x1="' + x + '" x2="' + x + '" y1="0" y2="1000"/>'; }).join("");
    div.innerHTML = '<div class="pc-title">' + escapeHtml(spec.title) + '</div><div class="pc-legend">' + legend + "</div>" +
      '<div class="pc-plot"><svg class="pc-lines" viewBox="0 0 1000 1000" preserveAspectRatio="none" role="img" aria-label="' +
      escapeHtml(spec.title) + '">' + axes + '<g fill="none" stroke-opacity="' + opacity + '">' + paths(spec, lines.per).join("") +
      "</g></svg>" + labels(spec, lines.xs) + "</div>";
    fitNames(div);
    if (window.ResizeObserver) { new ResizeObserver(function () { fitNames(div); }).observe(div); }
    div.dataset.drawn = "1";
    // when the drawing has been painted (the next frame): benchmarks/bench_dashboard.py reads it
    requestAnimationFrame(function () { setTimeout(function () { div.dataset.painted = String(performance.now()); }, 0); });
  }

  document.querySelectorAll("div.parallel").forEach(draw);
  window.tunebookParallel = { draw: draw };
})();
