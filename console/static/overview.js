// Draws the overview's charts from the JSON the page embeds (no inline script: CSP).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("overview-data").textContent);
  const labels = JSON.parse(document.getElementById("overview-labels").textContent);
  const animation = false; // drawn at once: screenshots and tests see the final chart
  function chart(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    config.options = Object.assign({ animation, responsive: true, maintainAspectRatio: false }, config.options || {});
    canvas.dataset.drawn = "1";
    new Chart(canvas, config);
  }
  chart("chart-answers", {
    type: "bar",
    data: {
      labels: data.days,
      datasets: [
        { label: labels.answers, data: data.answers, backgroundColor: "#2451b3" },
        { label: labels.not_found, data: data.not_found, backgroundColor: "#f79009" },
      ],
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  if (data.handoffs) {
    chart("chart-handoffs", {
      type: "bar",
      data: { labels: data.days, datasets: [{ label: labels.handoffs, data: data.handoffs.per_day, backgroundColor: "#7a5af8" }] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
  if (data.evaluation) {
    chart("chart-eval", {
      type: "line",
      data: {
        // Date and time (UTC): several runs on one day stay apart.
        labels: data.evaluation.map((r) => r.at.slice(0, 16).replace("T", " ")),
        datasets: [{ label: labels.hit_at_5, data: data.evaluation.map((r) => r.hit_at_5), borderColor: "#067647" }],
      },
      options: { scales: { y: { min: 0, max: 1 } } },
    });
  }
  if (data.top_sources.length) {
    chart("chart-sources", {
      type: "bar",
      data: {
        labels: data.top_sources.map((s) => s.title),
        datasets: [{ label: labels.cited, data: data.top_sources.map((s) => s.count), backgroundColor: "#2451b3" }],
      },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
})();
