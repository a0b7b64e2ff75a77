// The carrier statement's chart: redeemed and pending subsidy per month, every carrier summed (the
// first table beneath it has each carrier's figures), drawn with the vendored ECharts.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var element = document.getElementById("carriers-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {},
    xAxis: {type: "category", data: data.months},
    yAxis: {type: "value"},
    series: data.series.map(function (s) { return {type: "bar", name: s.name, data: s.values}; })
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
