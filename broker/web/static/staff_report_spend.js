// The spend report's chart: each month's committed, redeemed, written off, released and clawed back
// yuan, the numbers of the month table beneath it (which screen readers read), drawn with the vendored
// ECharts. Without JavaScript the table is the whole page.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var element = document.getElementById("spend-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {top: 0},
    xAxis: {type: "category", data: data.months},
    yAxis: {type: "value"},
    series: data.series.map(function (s) { return {type: "bar", name: s.name, data: s.values.map(Number)}; })
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
