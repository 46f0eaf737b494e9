// Admin charts: every <canvas data-chart='{...}'> is drawn with the vendored Chart.js.
// The data sits in the attribute, not in an inline script, so the pages keep a strict
// Content-Security-Policy (script-src 'self'). The same figures are in a table beside each chart.
(function () {
  "use strict";
  var COLOURS = ["#0b4f9c", "#b35c00", "#4d7c0f", "#7a1fa2", "#a40000", "#00656f"];

  function dataset(spec, index, type) {
    var colour = COLOURS[index % COLOURS.length];
    var points = spec.data;
    if (spec.y) {
      points = spec.data.map(function (x, i) { return {x: x, y: spec.y[i]}; });
    }
    return {
      label: spec.label,
      data: points,
      backgroundColor: colour,
      borderColor: colour,
      showLine: Boolean(spec.line) || type === "line",
      pointRadius: spec.line ? 0 : 4,
      borderDash: spec.line ? [6, 4] : undefined,
      fill: false
    };
  }

  function scale(title) {
    var options = {beginAtZero: true};
    if (title) { options.title = {display: true, text: title}; }
    return options;
  }

  function draw(canvas) {
    var spec = JSON.parse(canvas.getAttribute("data-chart"));
    var type = spec.type || "bar";
    new window.Chart(canvas, {
      type: type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, i) { return dataset(d, i, type); })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {x: scale(spec.x), y: scale(spec.y)},
        plugins: {legend: {display: spec.datasets.length > 1}}
      }
    });
  }

  function start() {
    if (!window.Chart) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
