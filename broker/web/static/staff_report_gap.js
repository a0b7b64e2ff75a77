// The supply–demand gap per kind: the numbers of the table beneath it (which screen readers read),
// drawn with the vendored ECharts as grouped bars. Without JavaScript the table is the whole page.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var element = document.getElementById("gap-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {top: 0},
    grid: {top: 40},
    xAxis: {type: "category", data: data.kinds},
    yAxis: {type: "value"},
    series: data.series.map(function (s) { return {type: "bar", name: s.name, data: s.values}; })
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
