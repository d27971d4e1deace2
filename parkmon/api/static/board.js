/* parkmon live board: reads the park's event stream and draws it with Apache ECharts.
   zh-CN first, English on the button (remembered in localStorage, or ?lang=en). No build step. */
(function () {
  "use strict";

  var T = {
    zh: {
      subtitle: "新能源消纳实时看板", connecting: "连接中…", live: "实时", down: "连接中断", denied: "未授权",
      token_label: "访问令牌", signin: "登录", token_hint: "向园区管理员索取（parkmon api token create）",
      updated: "最后更新", share_title: "今日新能源消纳比例", target: "目标", trend_title: "今日逐时消纳比例",
      power_title: "实时功率", pv: "光伏", wind: "风电", storage: "储能（放电为正）", grid: "电网（购电为正）",
      devices_title: "设备状态", offline: "离线或数据异常的设备", alerts_title: "告警", footer: "parkmon 智慧园区监测平台",
      toggle: "English", share_series: "消纳比例", target_line: "目标",
      status: { met: "达标", below_target: "未达标", insufficient_data: "数据不足", no_target: "无目标" },
      park_class: { zero_carbon: "零碳园区", low_carbon: "低碳园区", none: "" },
      detail: function (s) {
        return "新能源消纳 " + kwh(s.inputs.numerator) + " kWh / 用电 " + kwh(s.inputs.consumption) +
          " kWh · 弃电 " + kwh(s.inputs.curtailed) + " kWh · " + complete(s, "数据完整率", "（数据自 ", " 起）");
      },
      severity: { critical: "严重", warning: "预警", info: "提示" },
      no_alerts: "当前无告警", no_devices: "全部设备在线", problem: "数据暂不可用：",
      cost_title: "本月分时电费", yuan: "元", sharp: "尖峰", peak: "高峰", flat: "平段", valley: "低谷",
      cost_detail: function (c) {
        return "合计 " + yuan(c.value) + " 元（电度 " + yuan(c.energy_yuan) + "，需量 " + yuan(c.demand_yuan) +
          "）· 电量 " + kwh(c.kwh) + " kWh · 数据完整率 " + pct(c.completeness, 0) + " · 电价表 " +
          c.tariffs.map(function (x) { return x.name_zh; }).join("、");
      },
      reasons: { stale: "无数据", comm_failure: "通讯中断", device_failure: "设备故障", sensor_failure: "传感器异常",
                 link_failure: "链路异常", stopped: "停运", config_error: "配置错误" }
    },
    en: {
      subtitle: "Live new-energy board", connecting: "connecting…", live: "live", down: "disconnected",
      denied: "not authorised", token_label: "Access token", signin: "Sign in",
      token_hint: "ask the park's administrator (parkmon api token create)",
      updated: "Updated", share_title: "New-energy share today", target: "Target", trend_title: "Share by hour today",
      power_title: "Power now", pv: "PV", wind: "Wind", storage: "Storage (+discharge)", grid: "Grid (+import)",
      devices_title: "Devices", offline: "Devices offline or reporting bad data", alerts_title: "Alerts",
      footer: "parkmon smart park monitoring", toggle: "中文", share_series: "Share", target_line: "Target",
      status: { met: "Target met", below_target: "Below target", insufficient_data: "Insufficient data",
                no_target: "No target" },
      park_class: { zero_carbon: "zero-carbon park", low_carbon: "low-carbon park", none: "" },
      detail: function (s) {
        return "RE used " + kwh(s.inputs.numerator) + " kWh / consumption " + kwh(s.inputs.consumption) +
          " kWh · curtailed " + kwh(s.inputs.curtailed) + " kWh · " + complete(s, "data complete", " (data since ", ")");
      },
      severity: { critical: "critical", warning: "warning", info: "info" },
      no_alerts: "No firing alerts", no_devices: "All devices reporting", problem: "Data unavailable: ",
      cost_title: "Electricity cost this month", yuan: "yuan", sharp: "Sharp", peak: "Peak", flat: "Flat",
      valley: "Valley",
      cost_detail: function (c) {
        return "total " + yuan(c.value) + " yuan (energy " + yuan(c.energy_yuan) + ", demand " + yuan(c.demand_yuan) +
          ") · " + kwh(c.kwh) + " kWh · data complete " + pct(c.completeness, 0) + " · tariff " +
          c.tariffs.map(function (x) { return x.name_en || x.name_zh; }).join(", ");
      },
      reasons: { stale: "no data", comm_failure: "no answer", device_failure: "device fault",
                 sensor_failure: "sensor fault", link_failure: "link fault", stopped: "stopped",
                 config_error: "configuration error" }
    }
  };
  var SOURCES = ["pv", "wind", "storage", "grid"];
  var COLORS = { pv: "#f5c542", wind: "#5ec8e5", storage: "#a78bfa", grid: "#9aa5b1" };

  var park = document.querySelector('meta[name="parkmon-park"]').content;
  var params = new URLSearchParams(location.search);
  var lang = params.get("lang") || safeGet("parkmon.lang") || "zh";
  if (!T[lang]) { lang = "zh"; }
  var everyS = Number(params.get("every")) || 2;
  var lastAt = 0;
  var board = window.parkmonBoard = { last: null, events: 0, lang: function () { return lang; } };

  function $(id) { return document.getElementById(id); }
  function safeGet(k) { try { return localStorage.getItem(k); } catch (e) { return null; } }
  function safeSet(k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode */ } }
  function pct(v, digits) { return v === null || v === undefined ? "--" : (v * 100).toFixed(digits) + "%"; }
  function kwh(v) { return v === null || v === undefined ? "--" : Math.round(v).toLocaleString("en-US"); }
  // Completeness of today's share. Where the data starts after midnight (a park that joined, or the demo
  // started, this morning) the day's figure would read 0% beside a valid share: say since when there is
  // data and how complete it is since then (intervals used / intervals), the period's own figure in the API.
  function complete(s, label, open, close) {
    var from = s.inputs && s.inputs.data_from_ms, start = Date.parse(s.period_start);
    var step = (s.inputs && s.inputs.interval_ms) || 3600000;
    if (!from || !(from > start + step) || !s.inputs.intervals) { return label + " " + pct(s.completeness, 0); }
    return label + " " + pct(s.inputs.intervals_used / s.inputs.intervals, 0) + open +
      hhmm.format(new Date(from)) + close;
  }
  function yuan(v) {
    return v === null || v === undefined ? "--" : v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  }
  function kw(v) { return v === null || v === undefined ? "--" : Math.round(v).toLocaleString("en-US"); }
  var clock = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit",
                                                 second: "2-digit", hour12: false });
  var hhmm = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit",
                                                hour12: false });
  function text(id, s) { var e = $(id); if (e.textContent !== s) { e.textContent = s; } }

  var charts = {
    gauge: echarts.init($("share-gauge")),
    trend: echarts.init($("trend-chart")),
    power: echarts.init($("power-chart"))
  };
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
  var axis = { axisLine: { lineStyle: { color: "#8fa3b8" } }, splitLine: { lineStyle: { color: "#24405e" } } };

  function setConn(state) {
    var e = $("conn");
    e.setAttribute("data-state", state);
    e.setAttribute("data-i18n", state);
    e.textContent = T[lang][state];
  }

  function applyLabels() {
    var t = T[lang];
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach(function (e) {
      var v = t[e.getAttribute("data-i18n")];
      if (typeof v === "string") { e.textContent = v; }
    });
    $("lang-toggle").textContent = t.toggle;
    $("lang-toggle").lang = lang === "zh" ? "en" : "zh-CN";
  }

  function render() {
    var d = board.last;
    if (!d) { return; }
    var t = T[lang], s = d.share;
    var name = lang === "zh" ? d.park.name_zh : d.park.name_en;
    text("park-name", name);
    document.title = name + " · " + t.subtitle;
    var upd = $("updated");
    upd.setAttribute("data-ms", String(d.at_ms));
    upd.dateTime = new Date(d.at_ms).toISOString();
    text("updated", clock.format(new Date(d.at_ms)));

    // share against target
    var v = $("share-value");
    v.setAttribute("data-value", s.value === null ? "" : String(s.value));
    text("share-value", pct(s.value, 1));
    text("share-target", pct(s.target, 0));
    text("share-class", t.park_class[d.park.park_class] || "");
    var st = $("share-status");
    st.setAttribute("data-status", s.status);
    text("share-status", t.status[s.status] || s.status);
    text("share-detail", t.detail(s));
    var target = s.target === null ? null : s.target;
    // the dial: red below the park's target, green above, a red marker on the target itself
    var dial = { type: "gauge", min: 0, max: 100, startAngle: 210, endAngle: -30, radius: "95%", splitNumber: 5 };
    charts.gauge.setOption({
      series: [
        Object.assign({}, dial, {
          id: "share",
          axisLine: { lineStyle: { width: 18, color: target === null ? [[1, "#3fb27f"]]
                                                     : [[target, "#e6553a"], [1, "#3fb27f"]] } },
          pointer: { itemStyle: { color: "#e6edf3" } },
          axisTick: { distance: -18, length: 6, lineStyle: { color: "#0d1b2a" } },
          splitLine: { distance: -18, length: 18, lineStyle: { color: "#0d1b2a", width: 2 } },
          axisLabel: { color: "#8fa3b8", distance: 26, formatter: "{value}%" },
          title: { show: false }, detail: { show: false },
          data: [{ value: s.value === null ? 0 : +(s.value * 100).toFixed(1) }]
        }),
        Object.assign({}, dial, {
          id: "target",
          axisLine: { show: false }, axisTick: { show: false }, splitLine: { show: false }, axisLabel: { show: false },
          pointer: { show: target !== null, icon: "triangle", length: "18%", width: 14, offsetCenter: [0, "-88%"],
                     itemStyle: { color: "#e6553a" } },
          title: { show: false }, detail: { show: false },
          data: [{ value: target === null ? 0 : +(target * 100).toFixed(1) }]
        })
      ]
    });

    // hourly share with the target line
    var trend = d.share_trend || [];
    charts.trend.setOption({
      animation: false,
      grid: { left: 44, right: 16, top: 24, bottom: 28 },
      tooltip: { trigger: "axis", valueFormatter: function (x) { return x === null ? "--" : x + "%"; } },
      xAxis: Object.assign({ type: "category", data: trend.map(function (h) { return hhmm.format(new Date(h.start_ms)); }) }, axis),
      yAxis: Object.assign({ type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%", color: "#8fa3b8" } }, axis),
      series: [{
        name: t.share_series, type: "bar", itemStyle: { color: "#3fb27f" },
        data: trend.map(function (h) { return h.value === null ? null : +(h.value * 100).toFixed(1); }),
        markLine: target === null ? { data: [] } : {
          symbol: "none", lineStyle: { color: "#e6553a", type: "dashed", width: 2 },
          label: { formatter: t.target_line + " " + pct(target, 0), color: "#e6553a", position: "insideEndTop" },
          data: [{ yAxis: +(target * 100).toFixed(1) }]
        }
      }]
    }, { replaceMerge: ["series"] });

    // power by source: now and the last half hour
    var p = d.power;
    SOURCES.forEach(function (k) {
      var e = $("power-" + k);
      e.setAttribute("data-kw", p.now[k].kw === null ? "" : String(p.now[k].kw));
      text("power-" + k, kw(p.now[k].kw));
    });
    // per minute over the half hour, then the value of this event
    var end = d.at_ms, start = end - 30 * 60000;
    charts.power.setOption({
      animation: false,
      grid: { left: 56, right: 16, top: 30, bottom: 28 },
      legend: { top: 0, textStyle: { color: "#e6edf3" } },
      tooltip: { trigger: "axis", valueFormatter: function (x) { return kw(x) + " kW"; } },
      xAxis: Object.assign({ type: "time", min: start, max: end, splitNumber: 6,
                             axisLabel: { color: "#8fa3b8", formatter: function (ms) { return hhmm.format(new Date(ms)); } }
                           }, axis),
      yAxis: Object.assign({ type: "value", axisLabel: { color: "#8fa3b8" } }, axis),
      series: SOURCES.map(function (k) {
        var data = p.history.t.map(function (ms, i) { return [ms, p.history[k][i]]; });
        if (p.now[k].kw !== null) { data.push([end, p.now[k].kw]); }
        var n = data.filter(function (x) { return x[1] !== null; }).length;
        return { id: k, name: t[k], type: "line", showSymbol: n < 5, symbolSize: 5, connectNulls: false,
                 lineStyle: { width: 2 }, itemStyle: { color: COLORS[k] }, data: data };
      })
    }, { replaceMerge: ["series"] });

    // devices and alerts
    var dv = d.devices;
    text("devices-offline", String(dv.offline));
    text("devices-total", String(dv.total));
    fillList("devices-list", dv.offline_devices, t.no_devices, function (o) {
      return o.enterprise + "/" + o.device + (o.name ? " " + o.name : "") + " — " + (t.reasons[o.reason] || o.reason);
    });
    text("alerts-count", String(d.alerts.firing));
    // the month's cost by time-of-use band
    var c = d.cost || { value: null };
    ["sharp", "peak", "flat", "valley"].forEach(function (b) {
      var band = (c.by_band || []).filter(function (x) { return x.band === b; })[0];
      text("cost-" + b, band ? yuan(band.yuan) : "--");
    });
    text("cost-detail", c.by_band ? t.cost_detail(c) : (c.detail || ""));
    fillList("alerts", d.alerts.items, t.no_alerts, function (a, li) {
      var sev = document.createElement("span");
      sev.className = "sev " + a.severity;
      sev.textContent = t.severity[a.severity] || a.severity;
      li.appendChild(sev);
      li.setAttribute("data-alert-id", String(a.id));
      return (lang === "zh" ? a.text_zh : a.text_en) || (lang === "zh" ? a.name_zh : a.name_en);
    });
  }

  function fillList(id, items, empty, line) {
    var ul = $(id);
    ul.textContent = "";
    if (!items.length) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = empty;
      ul.appendChild(none);
      return;
    }
    items.forEach(function (it) {
      var li = document.createElement("li");
      li.appendChild(document.createTextNode(line(it, li)));
      ul.appendChild(li);
    });
  }

  function connect() {
    var url = "../api/v1/parks/" + encodeURIComponent(park) + "/live" +
      (params.get("every") ? "?every=" + encodeURIComponent(params.get("every")) : "");
    var es = new EventSource(url);
    es.onmessage = function (e) {
      board.last = JSON.parse(e.data);
      board.events += 1;
      lastAt = Date.now();
      setConn("live");
      render();
    };
    es.addEventListener("problem", function (e) {
      setConn("down");
      text("share-detail", T[lang].problem + JSON.parse(e.data).detail);
    });
    es.onerror = function () {
      setConn("down");
      if (es.readyState !== EventSource.CLOSED) { return; }  // a dropped stream: EventSource reconnects itself
      refused();
    };
  }

  // the server refused the stream (EventSource does not say why): ask the snapshot, show the answer
  // (401 no or expired token, 403 another park's board, 404 no such park), try again later
  function refused() {
    fetch("../api/v1/parks/" + encodeURIComponent(park) + "/live/snapshot", { credentials: "same-origin" })
      .then(function (r) {
        if (r.ok) { setTimeout(connect, 1000); return; }
        return r.json().catch(function () { return {}; }).then(function (b) {
          if (r.status === 401 || r.status === 403) { setConn("denied"); }
          if (r.status === 401) { $("signin").hidden = false; }
          text("share-detail", T[lang].problem + r.status + " " + (b.detail || ""));
          setTimeout(connect, 30000);
        });
      })
      .catch(function () { setTimeout(connect, 5000); });
  }

  // a stream that stays open but goes quiet is as good as down
  setInterval(function () {
    if (lastAt && Date.now() - lastAt > (3 * everyS + 5) * 1000) { setConn("down"); }
  }, 1000);

  // a token typed here goes to the server's sign-in, which sets it as an HttpOnly cookie the stream sends
  // (EventSource cannot send headers; a URL would leave it in access logs): no script can read it, and
  // the server accepts it only for the board's reads
  $("signin").addEventListener("submit", function (e) {
    e.preventDefault();
    var v = $("token").value.trim();
    if (!v) { return; }
    $("token").value = "";
    fetch("sign-in", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
                       body: JSON.stringify({ token: v }) })
      .then(function (r) {
        if (!r.ok) { setConn("denied"); return; }
        $("signin").hidden = true;
        setConn("connecting");
        connect();
      })
      .catch(function () { setConn("down"); });
  });

  $("lang-toggle").addEventListener("click", function () {
    lang = lang === "zh" ? "en" : "zh";
    safeSet("parkmon.lang", lang);
    applyLabels();
    setConn($("conn").getAttribute("data-state"));
    render();
  });

  applyLabels();
  connect();
})();
