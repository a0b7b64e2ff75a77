// The fulfilment report's funnel: the numbers of the table beneath it (which screen readers read),
// drawn with the vendored ECharts. Without JavaScript the table is the whole page.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  var element = document.getElementById("funnel-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    xAxis: {type: "category", data: data.stages},
    yAxis: {type: "value", minInterval: 1},
    series: [{type: "bar", data: data.values, label: {show: true, position: "top"}}]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
