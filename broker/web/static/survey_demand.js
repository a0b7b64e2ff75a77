// A demand survey's chart: the firms that declared demand per kind, region and month, the figures of
// the table below it, drawn with the vendored ECharts. Without JavaScript the table is the whole page.
(function () {
  "use strict";
  var source = document.getElementById("survey-data"), element = document.getElementById("survey-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {data: [data.series]},
    xAxis: {type: "category", data: data.labels},
    yAxis: {type: "value", minInterval: 1},
    series: [{name: data.series, type: "bar", data: data.firms}]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
