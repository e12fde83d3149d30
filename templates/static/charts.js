if (window.Plotly) {
  document.querySelectorAll('script[id^="figure-"]').forEach(function (el) {
    var fig = JSON.parse(el.textContent);
    Plotly.newPlot(el.id.replace("figure-", "chart-"), fig.data, fig.layout, {responsive: true, displaylogo: false});
  });
} else {
  document.querySelectorAll(".chart").forEach(function (el) { el.textContent = "plotly.min.js is missing next to this page: charts unavailable (the tables hold every number)."; el.style.minHeight = "0"; });
}
