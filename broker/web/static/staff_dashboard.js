// The staff dashboard's charts: the numbers of the tables beside them (which screen readers read),
// drawn with the vendored ECharts. Without JavaScript the tables are the whole page.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var s = data.series;

  function draw(id, option) {
    var element = document.getElementById(id);
    if (!element) { return; }
    var chart = echarts.init(element, null, {renderer: "svg"});
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  }

  draw("supply-chart", {
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {data: [s.supply, s.demand]},
    xAxis: {type: "category", data: data.kinds},
    yAxis: {type: "log", logBase: 10, min: 1},
    series: [
      {name: s.supply, type: "bar", data: data.supply.map(function (v) { return v || null; })},
      {name: s.demand, type: "bar", data: data.demand.map(function (v) { return v || null; })}
    ]
  });
  draw("trend-chart", {
    animation: false,
    tooltip: {trigger: "axis", valueFormatter: function (v) { return v == null ? "—" : v + "%"; }},
    legend: {data: data.trend.map(function (t) { return t.name; })},
    xAxis: {type: "category", data: data.cycles},
    yAxis: {type: "value", min: 0, max: 100, axisLabel: {formatter: "{value}%"}},
    series: data.trend.map(function (t) { return {name: t.name, type: "line", data: t.data, connectNulls: true}; })
  });
  draw("program-chart", {
    animation: false,
    tooltip: {trigger: "axis"},
    legend: {data: [s.budget, s.committed, s.redeemed]},
    xAxis: {type: "category", data: data.programs},
    yAxis: {type: "value", name: s.wan},
    series: [
      {name: s.budget, type: "bar", data: data.budget},
      {name: s.committed, type: "bar", data: data.committed},
      {name: s.redeemed, type: "bar", data: data.redeemed}
    ]
  });
})();
