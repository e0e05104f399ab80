/* Charts from data the page already shows in a table: each <canvas data-chart="ID"> reads the JSON
 * of <script type="application/json" id="ID"> ({type, labels, series: [{label, data}], stacked,
 * unit}) and draws it with the vendored Chart.js. Without JavaScript the tables remain. */
(function () {
  "use strict";
  var COLORS = ["#0b5cab", "#2e8540", "#d97706", "#7c3aed", "#b42318", "#0e7490", "#6b7280"];

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") return;
    var spec = JSON.parse(source.textContent);
    var type = spec.type || "bar";
    var datasets = spec.series.map(function (s, i) {
      var color = s.color || COLORS[i % COLORS.length];
      return {
        label: s.label,
        data: s.data,
        backgroundColor: type === "doughnut" ? COLORS.slice(0, s.data.length) : color,
        borderColor: color,
        borderWidth: type === "line" ? 2 : 0,
        fill: false,
        tension: 0.2,
      };
    });
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { position: "bottom" } },
    };
    if (type !== "doughnut") {
      options.scales = {
        x: { stacked: !!spec.stacked },
        y: { stacked: !!spec.stacked, beginAtZero: true, title: { display: !!spec.unit, text: spec.unit || "" } },
      };
    }
    new Chart(canvas, { type: type, data: { labels: spec.labels, datasets: datasets }, options: options });
    canvas.closest(".chart")?.classList.add("chart-drawn");
  }

  function init() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
