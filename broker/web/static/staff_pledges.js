// The staff pledges page's chart: pledged, published, allocated and delivered summed per kind, the
// numbers of the table beneath it (which screen readers read), drawn with the vendored ECharts.
(function () {
  "use strict";
  var source = document.getElementById("pledges-data");
  var element = document.getElementById("pledges-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {data: data.series.map(function (s) { return s.name; })},
    xAxis: {type: "category", data: data.kinds},
    yAxis: {type: "value"},
    series: data.series.map(function (s) { return {name: s.name, type: "bar", data: s.data}; })
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
