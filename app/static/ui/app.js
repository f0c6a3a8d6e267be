// data-streams status page: polls the JSON API and draws streams, batches and charts.
// Plain ES2017, no build step, no dependency; the charts are hand-drawn inline SVG.
(function () {
  "use strict";

  var POLL_MS = 3000;
  var TOKEN_KEY = "data-streams.token";
  // Names whose values the page hides as well (the server already redacts: app/redaction.py).
  var SECRET = /token|secret|passw|api[-_]?key|authorization|credential|cookie|private|signature|session|(?:^|[-_.])sig(?:$|[-_.])/i;
  var HIDDEN = "•••• hidden";
  var NAME = /^#\/streams\/([a-z0-9][a-z0-9_-]{0,63})$/;
  var PAGE_SIZE = 50;
  // The overview pages like GET /streams: `pages` holds the cursor of each page seen so
  // far (null: the first), so Previous goes back; `state` filters by running/stopped.
  var ui = { offset: 0, timer: null, route: null, defText: null, seq: 0, last: null, notice: null,
             pages: [null], next: null, state: "" };

  function $(id) { return document.getElementById(id); }

  function esc(value) {
    return String(value === undefined || value === null ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  async function api(path, method) {
    var headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    var response = await fetch(path, { method: method || "GET", headers: headers });
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      var error = new Error((body && body.error && body.error.message) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // ---- formatting -------------------------------------------------------------------
  function now() { return Date.now() + ui.offset; }
  function ms(iso) { var t = iso ? Date.parse(iso) : NaN; return isNaN(t) ? null : t; }
  function num(n) { return n === undefined || n === null ? "—" : Number(n).toLocaleString("en"); }

  function span(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    var s = Math.max(0, seconds);
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return (s < 10 && s % 1 ? s.toFixed(1) : Math.round(s)) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.round((s % 86400) / 3600) + " h";
  }

  function clock(iso) {
    var t = ms(iso);
    if (t === null) return "—";
    var d = new Date(t);
    var time = d.toLocaleTimeString("en-GB");
    return new Date().toDateString() === d.toDateString() ? time
      : d.toISOString().slice(0, 10) + " " + time;
  }

  function duration(batch) {
    var start = ms(batch.started_at);
    var end = ms(batch.finished_at) || (batch.status === "running" ? now() : null);
    return start === null || end === null ? null : (end - start) / 1000;
  }

  function badge(status) {
    return '<span class="badge s-' + esc(status) + '">' + esc(status) + "</span>";
  }

  function drift(value) {
    if (!value || typeof value !== "object") return "";
    var parts = ["added", "removed"].filter(function (k) { return value[k] && value[k].length; })
      .map(function (k) { return k + " " + value[k].join(", "); });
    var changed = Object.keys(value.changed || {});
    if (changed.length) parts.push("changed " + changed.join(", "));
    return parts.length ? "schema drift: " + parts.join("; ") : "";
  }

  function note(text, cls) {
    return text ? '<span class="' + cls + '" title="' + esc(text) + '">' + esc(text) + "</span>" : "";
  }

  function problem(batch) {
    if (!batch) return "";
    var error = batch.error ? (batch.error.kind ? batch.error.kind + ": " : "") +
      (batch.error.message || "") : "";
    return note(error, "err") +
      note(batch.quarantine_reason ? "quarantined: " + batch.quarantine_reason : "", "warn-note") +
      note(drift(batch.schema_drift), "warn-note");
  }

  function changes(batch) {
    var c = batch.changes && typeof batch.changes === "object" ? batch.changes : batch;
    if (c.added === undefined && c.updated === undefined && c.removed === undefined) return "—";
    if (!c.added && !c.updated && !c.removed) return '<span class="muted">no change</span>';
    return '<span class="add">+' + num(c.added || 0) + '</span> <span class="upd">~' +
      num(c.updated || 0) + '</span> <span class="rem">−' + num(c.removed || 0) + "</span>";
  }

  function freshness(line, staleIntervals) {
    var published = ms(line.published_at);
    if (published === null) return { text: "no version yet", stale: false, age: null };
    var age = (now() - published) / 1000;
    var stale = !!line.interval_seconds && age > staleIntervals * line.interval_seconds;
    return { text: span(age) + " old", stale: stale, age: age };
  }

  // ---- definition, secrets hidden ---------------------------------------------------
  function redactUrl(text) {
    return text.replace(/([?&])([^=&#]+)=([^&#]*)/g, function (all, sep, key, value) {
      return SECRET.test(decodeURIComponent(key)) ? sep + key + "=" + HIDDEN : all;
    });
  }

  function redact(value, secret) {
    if (Array.isArray(value)) return value.map(function (item) { return redact(item, secret); });
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (key) {
        out[key] = redact(value[key], secret || SECRET.test(key));
      });
      return out;
    }
    if (secret && value !== null && value !== "") return HIDDEN;
    return typeof value === "string" && /^https?:/i.test(value) ? redactUrl(value) : value;
  }

  // ---- charts -----------------------------------------------------------------------
  function niceMax(value) {
    if (value <= 0) return 1;
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var nice = [1, 2, 2.5, 5, 10].map(function (f) { return f * step; })
      .find(function (v) { return v >= value; });
    return nice || value;
  }

  function marker(status, x, y) {
    if (status === "failed" || status === "abandoned" || status === "cancelled") {
      return '<path class="mark m-failed" d="M' + (x - 4) + " " + (y - 4) + "l8 8m0 -8l-8 8" + '"/>';
    }
    if (status === "quarantined" || status === "discarded") {
      return '<path class="mark m-quarantined" d="M' + x + " " + (y - 5) + "l5 9h-10z" + '"/>';
    }
    return "";
  }

  function chart(kind, batches, value, unit, width) {
    var rows = batches.slice(0, 50).reverse();
    if (!rows.length) return '<p class="muted empty">No batches yet.</p>';
    var w = Math.max(260, width), h = 180, left = 52, right = 10, top = 16, bottom = 24;
    var plotW = w - left - right, plotH = h - top - bottom;
    var values = rows.map(function (b) { return Math.max(0, value(b) || 0); });
    var max = niceMax(Math.max.apply(null, values));
    var slot = plotW / Math.max(rows.length, 12);
    var barW = Math.max(2, Math.min(28, slot * 0.72));
    var out = ['<svg class="chart" data-chart="' + kind + '" width="' + w + '" height="' + h +
               '" role="img" aria-label="' + esc(kind) + ' per batch">'];
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH - f * plotH;
      out.push('<line class="grid" x1="' + left + '" x2="' + (w - right) + '" y1="' + y +
               '" y2="' + y + '"/><text class="tick" x="' + (left - 6) + '" y="' + (y + 4) +
               '" text-anchor="end">' + esc(unit(max * f)) + "</text>");
    });
    rows.forEach(function (b, i) {
      var x = left + i * slot + (slot - barW) / 2;
      var bh = Math.max(values[i] > 0 ? 2 : 0, (values[i] / max) * plotH);
      var y = top + plotH - bh;
      out.push('<rect class="bar s-' + esc(b.status) + '" data-version="' + esc(b.version) +
               '" data-status="' + esc(b.status) + '" x="' + x.toFixed(1) + '" y="' + y.toFixed(1) +
               '" width="' + barW.toFixed(1) + '" height="' + bh.toFixed(1) + '" rx="2"><title>v' +
               esc(b.version) + " · " + esc(b.status) + " · " + esc(unit(values[i])) +
               "</title></rect>" + marker(b.status, x + barW / 2, y - 6));
    });
    var labelEvery = Math.ceil(rows.length / Math.max(1, Math.floor(plotW / 44)));
    rows.forEach(function (b, i) {
      if (i % labelEvery && i !== rows.length - 1) return;
      out.push('<text class="tick" x="' + (left + i * slot + slot / 2).toFixed(1) + '" y="' +
               (h - 6) + '" text-anchor="middle">v' + esc(b.version) + "</text>");
    });
    out.push("</svg>");
    return out.join("");
  }

  function recordsOf(b) { return b.records !== undefined ? b.records : b.records_received; }
  function countUnit(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e4) return Math.round(v / 1e3) + "k";
    return v % 1 ? v.toFixed(1) : num(v);
  }

  // ---- overview ---------------------------------------------------------------------
  function overviewShell() {
    return '<section class="card"><div class="section-head"><h1>Streams</h1>' +
      '<div class="counts" id="counts"></div></div>' +
      '<table class="grid streams"><thead><tr><th>Stream</th><th>State</th><th>Interval</th>' +
      "<th>Version</th><th>Freshness</th><th>Last batch</th><th></th></tr></thead>" +
      '<tbody id="stream-rows"></tbody></table><div class="pager"><label>Show <select ' +
      'id="state-filter"><option value="">all streams</option><option value="running">running' +
      '</option><option value="stopped">stopped</option></select></label><span class="muted" ' +
      'id="page-label"></span><button class="ghost" data-action="page-prev">Previous</button>' +
      '<button class="ghost" data-action="page-next">Next</button></div></section>';
  }

  function overviewPath() {
    var cursor = ui.pages[ui.pages.length - 1];
    return "/ui/overview?limit=" + PAGE_SIZE + (ui.state ? "&state=" + ui.state : "") +
      (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
  }

  function turnPage(action) {
    if (action === "page-next" && ui.next) ui.pages.push(ui.next);
    if (action === "page-prev" && ui.pages.length > 1) ui.pages.pop();
    refresh();
  }

  function actionButton(line) {
    return line.state === "running"
      ? '<button class="act stop" data-action="stop" data-stream="' + esc(line.stream) + '">Stop</button>'
      : '<button class="act start" data-action="start" data-stream="' + esc(line.stream) + '">Start</button>';
  }

  function progress(p) {
    return p ? '<div class="progress">fetching v' + esc(p.version) + " · " + num(p.pages_received) +
      " pages · " + num(p.records_received) + " records</div>" : "";
  }

  function nextRun(iso) {
    var seconds = (ms(iso) - now()) / 1000;
    return seconds < 1 ? "due now" : "next in " + span(seconds);
  }

  function streamRow(line, staleIntervals) {
    var f = freshness(line, staleIntervals), last = line.last_batch;
    var next = line.state === "running" && ms(line.next_run_at) !== null
      ? '<div class="muted">' + nextRun(line.next_run_at) + "</div>" : "";
    return '<tr data-testid="stream-row" data-stream="' + esc(line.stream) + '" class="' +
      (f.stale ? "is-stale" : "") + '">' +
      '<td data-label="Stream"><a class="name" href="#/streams/' + esc(line.stream) + '">' +
      esc(line.stream) + "</a>" + (line.description ? '<div class="muted">' +
      esc(line.description) + "</div>" : "") + "</td>" +
      '<td data-label="State">' + badge(line.state) + next + "</td>" +
      '<td data-label="Interval">' + span(line.interval_seconds) + "</td>" +
      '<td data-label="Version">' + (line.current_version ? "v" + esc(line.current_version) : "—") + "</td>" +
      '<td data-label="Freshness"><span class="fresh' + (f.stale ? " stale" : "") + '" title="' +
      esc(line.published_at || "") + '">' + esc(f.text) + (f.stale ? " · stale" : "") + "</span></td>" +
      '<td data-label="Last batch">' + (last ? badge(last.status) + " <span class=\"muted\">v" +
      esc(last.version) + "</span> " + problem(last) : '<span class="muted">none</span>') +
      progress(line.in_progress) + "</td>" +
      '<td class="actions">' + actionButton(line) + "</td></tr>";
  }

  async function updateOverview() {
    var body = await api(overviewPath());
    ui.offset = (ms(body.now) || Date.now()) - Date.now();
    ui.next = body.next_cursor;
    var lines = body.streams, k = body.stale_intervals, paged = ui.pages.length > 1 || !!ui.next;
    var stale = lines.filter(function (l) { return freshness(l, k).stale; }).length;
    var failing = lines.filter(function (l) {
      return l.last_batch && /failed|quarantined|abandoned/.test(l.last_batch.status);
    }).length;
    var running = lines.filter(function (l) { return l.state === "running"; }).length;
    var where = paged || ui.state ? " here" : "";
    $("counts").innerHTML = '<span class="pill">' + num(body.total) + " streams</span>" +
      '<span class="pill ok">' + running + " running" + where + "</span>" +
      '<span class="pill' + (stale ? " warn" : "") + '">' + stale + " stale" + where + "</span>" +
      '<span class="pill' + (failing ? " bad" : "") + '">' + failing + " failing" + where + "</span>";
    $("page-label").textContent = paged ? "page " + ui.pages.length : "";
    var prev = document.querySelector('[data-action="page-prev"]');
    var next = document.querySelector('[data-action="page-next"]');
    prev.hidden = next.hidden = !paged;
    prev.disabled = ui.pages.length < 2;
    next.disabled = !ui.next;
    $("stream-rows").innerHTML = lines.length ? lines.map(function (l) { return streamRow(l, k); }).join("")
      : '<tr><td colspan="7" class="muted">No streams defined yet: PUT /streams/&lt;name&gt;.</td></tr>';
    return body;
  }

  // ---- one stream -------------------------------------------------------------------
  function streamShell(name) {
    return '<nav class="crumbs"><a href="#/">Streams</a> / ' + esc(name) + "</nav>" +
      '<section class="card"><div class="section-head"><h1 id="stream-title">' + esc(name) +
      '</h1><div class="links" id="stream-links"></div></div><div class="facts" id="facts"></div></section>' +
      '<section class="charts"><div class="card"><h2>Records per batch</h2><div class="chart-box" ' +
      'id="chart-records"></div></div><div class="card"><h2>Duration per batch</h2>' +
      '<div class="chart-box" id="chart-duration"></div></div></section>' +
      '<div class="legend"><span><i class="sw s-complete"></i>complete</span><span><i class="sw ' +
      's-running"></i>running</span><span><i class="sw s-failed"></i>failed ✕</span><span><i ' +
      'class="sw s-quarantined"></i>quarantined ▲</span></div>' +
      '<section class="card"><h2>Batches <small class="muted">last 50, newest first</small></h2>' +
      '<table class="grid batches"><thead><tr><th>Version</th><th>Status</th><th>Records</th>' +
      "<th>Changes</th><th>Duration</th><th>Started</th><th>Error or reason</th></tr></thead>" +
      '<tbody id="batch-rows"></tbody></table></section>' +
      '<section class="card"><h2>Data</h2><button class="ghost" data-action="preview" data-stream="' +
      esc(name) + '">Show the first 10 records</button><pre class="code" id="preview" hidden></pre></section>' +
      '<section class="card"><h2>Definition <small class="muted">secrets hidden</small></h2>' +
      '<pre class="code" id="definition"></pre></section>';
  }

  function fact(label, html, cls) {
    return '<div class="fact ' + (cls || "") + '"><div class="label">' + label + '</div><div class="value">' +
      html + "</div></div>";
  }

  function batchRow(b) {
    var recs = b.records !== undefined ? num(b.records)
      : num(b.records_received) + (b.status === "running" ? "…" : "");
    return '<tr data-testid="batch-row" data-version="' + esc(b.version) + '" data-status="' + esc(b.status) + '">' +
      '<td data-label="Version">v' + esc(b.version) + '</td><td data-label="Status">' + badge(b.status) +
      '</td><td data-label="Records" class="num">' + recs + (b.pages_received ? ' <span class="muted">(' +
      num(b.pages_received) + (b.pages_received === 1 ? " page)" : " pages)") + "</span>" : "") + '</td><td data-label="Changes">' + changes(b) +
      '</td><td data-label="Duration" class="num">' + span(duration(b)) + '</td><td data-label="Started">' +
      esc(clock(b.started_at)) + '</td><td data-label="Error or reason">' + (problem(b) || "") + "</td></tr>";
  }

  async function updateStream(name) {
    var results = await Promise.all([api("/streams/" + name), api("/streams/" + name + "/batches?limit=50"),
                                     api("/ui/overview/" + name)]);
    var info = results[0], batches = results[1].batches, over = results[2];
    ui.offset = (ms(over.now) || Date.now()) - Date.now();
    var line = over.streams.find(function (l) { return l.stream === name; }) || {};
    var f = freshness(line, over.stale_intervals);
    $("stream-title").innerHTML = esc(name) + " " + badge(info.state);
    $("stream-links").innerHTML = actionButton({ stream: name, state: info.state }) +
      '<a class="btn ghost" href="/streams/' + esc(name) + '/data" target="_blank" rel="noopener">Data (JSON)</a>' +
      (over.flower_url ? '<a class="btn ghost" href="' + esc(over.flower_url) +
       '" target="_blank" rel="noopener">Flower</a>' : "");
    var p = info.in_progress;
    $("facts").innerHTML = fact("Interval", span(line.interval_seconds || info.interval_seconds)) +
      fact("Current version", info.current_version ? "v" + esc(info.current_version) : "—") +
      fact("Freshness", esc(f.text) + (f.stale ? " · stale" : ""), f.stale ? "stale" : "") +
      fact("Next run", info.state === "running" && info.next_run_at ? nextRun(info.next_run_at)
           : info.state) +
      fact("In progress", p ? "v" + esc(p.version) + " · " + num(p.pages_received) + " pages · " +
           num(p.records_received) + " records" : "idle");
    drawCharts(batches);
    $("batch-rows").innerHTML = batches.length ? batches.map(batchRow).join("")
      : '<tr><td colspan="7" class="muted">No batches yet: press Start.</td></tr>';
    var text = JSON.stringify(redact(info.definition, false), null, 2);
    if (text !== ui.defText) { $("definition").textContent = text; ui.defText = text; }
    return over;
  }

  function drawCharts(batches) {
    if (batches) ui.last = batches;
    if (!ui.last || !$("chart-records")) return;
    var box = $("chart-records");
    $("chart-records").innerHTML = chart("records", ui.last, recordsOf, countUnit, box.clientWidth);
    $("chart-duration").innerHTML = chart("duration", ui.last, duration, span, box.clientWidth);
  }

  // ---- refresh loop, routing, actions -----------------------------------------------
  function banner(html) {
    var el = $("banner");
    el.hidden = !html;
    el.innerHTML = html || "";
  }

  function routeOf() {
    var match = NAME.exec(location.hash);
    return match ? { name: match[1] } : { name: null };
  }

  async function refresh() {
    clearTimeout(ui.timer);
    var seq = ++ui.seq, route = ui.route;
    try {
      if (route.name) await updateStream(route.name); else await updateOverview();
      if (seq !== ui.seq) return;
      banner(ui.notice || "");
      $("token-form").classList.toggle("needs-token", !!ui.noticeAuth);
      $("refresh").className = "refresh live";
      $("refresh").textContent = "live · " + new Date().toLocaleTimeString("en-GB");
    } catch (error) {
      if (seq !== ui.seq) return;
      $("refresh").className = "refresh down";
      $("refresh").textContent = "not updating";
      if (error.status === 401 || error.status === 403) {
        $("token-form").classList.add("needs-token");
        banner(error.status === 401 ? "This server needs a token: enter the read token above."
          : "The token was refused: enter a valid token above.");
      } else {
        banner("Could not refresh: " + esc(error.message) + ". Retrying…");
      }
    }
    if (seq === ui.seq && !document.hidden) ui.timer = setTimeout(refresh, POLL_MS);
  }

  function render() {
    ui.route = routeOf();
    ui.defText = null;
    ui.last = null;
    $("view").innerHTML = ui.route.name ? streamShell(ui.route.name) : overviewShell();
    if (!ui.route.name) $("state-filter").value = ui.state;
    document.title = (ui.route.name ? ui.route.name + " · " : "") + "data-streams";
    refresh();
  }

  async function act(button) {
    var name = button.dataset.stream, action = button.dataset.action;
    if (action === "preview") return preview(name);
    if (action === "page-next" || action === "page-prev") return turnPage(action);
    button.disabled = true;
    try {
      await api("/streams/" + name + "/" + action, "POST");
      ui.notice = null;
      ui.noticeAuth = false;
    } catch (error) {
      // Kept across refreshes until the next action or token: the reads still succeed.
      ui.notice = (error.status === 401 || error.status === 403 ? "Not allowed to " + action +
        " (this needs the API token): " : "Could not " + action + ": ") + esc(error.message);
      ui.noticeAuth = error.status === 401 || error.status === 403;
    }
    refresh();
  }

  async function preview(name) {
    var el = $("preview");
    el.hidden = false;
    try {
      var body = await api("/streams/" + name + "/data?limit=10");
      el.textContent = "version " + body.version + "\n" + JSON.stringify(body.records, null, 2);
    } catch (error) {
      el.textContent = error.message;
    }
  }

  function tokenForm() {
    var input = $("token-input");
    input.placeholder = token() ? "token saved for this tab" : "Bearer token (optional)";
    $("token-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      ui.notice = null;
      ui.noticeAuth = false;
      input.value = "";
      input.placeholder = token() ? "token saved for this tab" : "Bearer token (optional)";
      refresh();
    });
    $("token-clear").addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN_KEY);
      input.placeholder = "Bearer token (optional)";
      refresh();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tokenForm();
    $("view").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      if (button) act(button);
    });
    $("view").addEventListener("change", function (event) {
      if (event.target.id !== "state-filter") return;
      ui.state = event.target.value;
      ui.pages = [null];
      refresh();
    });
    window.addEventListener("hashchange", render);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
    var resized = null;
    window.addEventListener("resize", function () {
      clearTimeout(resized);
      resized = setTimeout(function () { drawCharts(null); }, 150);
    });
    render();
  });
})();
