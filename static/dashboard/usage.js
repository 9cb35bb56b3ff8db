/* Usage charts (Chart.js) from the JSON the usage page embeds. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("usage-data").textContent);
  const common = { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } };
  new Chart(document.getElementById("usage-minutes"), {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Participant-minutes", data: data.participant_minutes, backgroundColor: "#4b6fd6" },
        { label: "Recording minutes", data: data.recording_minutes, backgroundColor: "#2bb673" },
      ],
    },
    options: common,
  });
  new Chart(document.getElementById("usage-peak"), {
    type: "line",
    data: { labels: data.labels, datasets: [{ label: "Peak concurrent members", data: data.peak_members, borderColor: "#8a5cd6", stepped: true }] },
    options: { ...common, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
})();
