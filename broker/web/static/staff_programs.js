// The subsidy programs' chart: the figures of the table below it (which screen readers read), in
// 万元, drawn with the vendored ECharts. Without JavaScript the table is the whole page.
(function () {
  "use strict";
  var source = document.getElementById("programs-data"), element = document.getElementById("programs-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent), s = data.series;
  var names = ["budget", "committed", "redeemed", "remaining"];
  var chart = echarts.init(element, null, {renderer: "svg"});
  chart.setOption({
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {data: names.map(function (n) { return s[n]; })},
    xAxis: {type: "category", data: data.programs},
    yAxis: {type: "value", name: data.unit},
    series: names.map(function (n) { return {name: s[n], type: "bar", data: data[n]}; })
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
