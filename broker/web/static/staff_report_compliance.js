// The compliance report's chart: how many of each matter in the period, the numbers of the table beneath
// it (which screen readers read), drawn with the vendored ECharts. Without JavaScript the table is the whole page.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var element = document.getElementById("compliance-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    grid: {left: 160},
    xAxis: {type: "value", minInterval: 1},
    yAxis: {type: "category", data: data.labels, inverse: true},
    series: [{type: "bar", data: data.values, label: {show: true, position: "right"}}]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
