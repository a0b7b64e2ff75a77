// The utilisation report's chart: each kind's used share (%), the numbers of the table beneath it
// (which screen readers read), drawn with the vendored ECharts.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var element = document.getElementById("utilisation-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    xAxis: {type: "category", data: data.labels},
    yAxis: {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
    series: [{type: "bar", data: data.values, label: {show: true, position: "top", formatter: "{c}%"}}]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
