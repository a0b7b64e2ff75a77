// The performance pack's satisfaction scores: the numbers of the table beneath the chart (which
// screen readers and the printed pack read), drawn with the vendored ECharts.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var element = document.getElementById("scores-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    xAxis: {type: "category", data: data.scores},
    yAxis: {type: "value", minInterval: 1},
    series: [{type: "bar", data: data.values, label: {show: true, position: "top"}}]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
