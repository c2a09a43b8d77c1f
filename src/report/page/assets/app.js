// swarm dashboard: renders pushed snapshots (Server-Sent Events) or, in the HTML
// report, the data embedded in the page. No framework, no build step.
"use strict";

(() => {
  const { LineChart, fmtTime, fmtNum, fmtFig } = SwarmCharts;
  const fmtInt = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"));
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const MAX_POINTS = 1500;

  // ---- theme -------------------------------------------------------------------
  const store = { get: (k) => { try { return localStorage.getItem(k); } catch (_) { return null; } },
                  set: (k, v) => { try { localStorage.setItem(k, v); } catch (_) { /* file:// */ } } };
  const prefersLight = window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches;
  const setTheme = (t) => { document.documentElement.dataset.theme = t; store.set("swarm-theme", t); redrawCharts(); };
  document.documentElement.dataset.theme = store.get("swarm-theme") || (prefersLight ? "light" : "dark");
  $("theme-btn").addEventListener("click", () => setTheme(document.documentElement.dataset.theme === "light" ? "dark" : "light"));

  // ---- state -------------------------------------------------------------------
  let meta = null, state = null;
  const series = { t: [], w: [], req: [], fail: [], p50: [], p95: [], p99: [], users: [] };
  const sort = { col: "1", asc: false };
  const charts = {
    rps: new LineChart($("ch-rps"), { legend: $("lg-rps"), series: [
      { label: "requests/s", color: "--c1", unit: "/s" }, { label: "failures/s", color: "--c2", unit: "/s" }] }),
    lat: new LineChart($("ch-lat"), { legend: $("lg-lat"), series: [
      { label: "p50", color: "--c3", unit: "ms" }, { label: "p95", color: "--c4", unit: "ms" }, { label: "p99", color: "--c2", unit: "ms" }] }),
    users: new LineChart($("ch-users"), { legend: $("lg-users"), stepped: true, series: [
      { label: "users", color: "--c5", unit: "" }] }),
  };
  const stepX = (x) => (Number.isInteger(x) ? `step ${x}` : "");
  charts.capLoad = new LineChart($("ch-cap-load"), { legend: $("lg-cap-load"), xfmt: stepX, series: [
    { label: "offered", color: "--c5", unit: "" }, { label: "achieved /s", color: "--c1", unit: "/s" }] });
  charts.capLat = new LineChart($("ch-cap-lat"), { legend: $("lg-cap-lat"), xfmt: stepX, series: [
    { label: "measured", color: "--c4", unit: "ms" }, { label: "limit", color: "--c2", unit: "ms" }] });
  function redrawCharts() { Object.values(charts).forEach((c) => c.draw()); }

  function clearSeries() { Object.values(series).forEach((a) => { a.length = 0; }); }

  // Merges neighbouring points in the older half so long runs stay light; spikes
  // survive because percentiles take the worse of the pair.
  function compact() {
    const s = series, half = Math.floor(s.t.length / 2) & ~1;
    const out = { t: [], w: [], req: [], fail: [], p50: [], p95: [], p99: [], users: [] };
    for (let i = 0; i < half; i += 2) {
      out.t.push(s.t[i + 1]); out.w.push(s.w[i] + s.w[i + 1]);
      out.req.push(s.req[i] + s.req[i + 1]); out.fail.push(s.fail[i] + s.fail[i + 1]);
      for (const k of ["p50", "p95", "p99"]) out[k].push(Math.max(s[k][i], s[k][i + 1]));
      out.users.push(s.users[i + 1]);
    }
    for (const k of Object.keys(s)) s[k] = out[k].concat(s[k].slice(half));
  }

  function addPoints(points) {
    for (const p of points) {
      series.t.push(p[0]); series.w.push(p[1] || 1); series.req.push(p[2]); series.fail.push(p[3]);
      series.p50.push(p[4]); series.p95.push(p[5]); series.p99.push(p[6]); series.users.push(p[7]);
    }
    while (series.t.length > MAX_POINTS) compact();
    const rate = (a) => a.map((v, i) => v / series.w[i]);
    charts.rps.setData(series.t, [rate(series.req), rate(series.fail)]);
    charts.lat.setData(series.t, [series.p50, series.p95, series.p99]);
    charts.users.setData(series.t, [series.users]);
  }

  // ---- meta (once per run) -------------------------------------------------------
  function applyMeta(m) {
    meta = m;
    document.title = `swarm · ${m.name}`;
    $("plan-name").textContent = m.name;
    const flows = m.flows.map((f) => `${f.name}${m.flows.length > 1 ? " ×" + f.weight : ""}`).join(", ");
    $("plan-target").textContent = [m.target, flows && "flows: " + flows].filter(Boolean).join("  ·  ");
    document.body.dataset.model = m.load.model;
    $("k-users-label").textContent = m.load.model === "open" ? "Running iterations" : "Users";
    $("users-chart-title").textContent = m.load.model === "open" ? "Running iterations" : "Active users";
    if (m.interactive && m.run === 0) document.body.dataset.idle = ""; else delete document.body.dataset.idle;
    const form = { "c-users": m.load.users, "c-spawn": m.load.spawn_rate, "c-rate": m.load.rate };
    for (const [id, v] of Object.entries(form)) if (v !== undefined && v !== null && !$(id).dataset.dirty) $(id).value = v;
    if (!$("c-duration").dataset.dirty && m.duration) $("c-duration").value = Math.round(m.duration) + "s";
    for (const a of document.querySelectorAll("#downloads-items a")) {
      a.href = `/api/report/${a.dataset.kind}?run=${m.run}`;
      a.setAttribute("download", "");
    }
    $("downloads-btn").disabled = !m.run;
  }

  // ---- state (every frame) ---------------------------------------------------------
  const ms = (v) => (v === null || v === undefined) ? "–" : `${fmtFig(v)}<small>ms</small>`;
  function kpi(id, html, sub, cls) {
    $(id).innerHTML = html;
    if (sub !== undefined) $(id + "-sub").textContent = sub;
    $(id).parentElement.classList.remove("bad", "warn");
    if (cls) $(id).parentElement.classList.add(cls);
  }

  function applyState(s) {
    state = s;
    const badge = $("state-badge");
    badge.dataset.state = s.state;
    badge.textContent = s.state;
    $("elapsed").textContent = fmtTime(s.elapsed);
    const left = s.planned && s.state === "running" ? Math.max(0, s.planned - s.elapsed) : null;
    $("planned").textContent = s.planned ? fmtTime(s.planned) + (left !== null ? ` · ${fmtTime(left)} left` : "") : "";
    $("progress-bar").style.width = s.planned ? Math.min(100, (100 * s.elapsed) / s.planned) + "%" : "0";
    const running = s.state === "running";
    // The form follows what the run steers towards, unless the user is editing it.
    if (running) {
      const follow = { "c-users": s.target_users, "c-rate": s.target_rate };
      for (const [id, v] of Object.entries(follow)) {
        const input = $(id);
        if (v !== null && v !== undefined && !input.dataset.dirty && document.activeElement !== input) input.value = v;
      }
    }
    // A live chart keeps room to grow; a finished run's chart fits its data.
    for (const c of Object.values(charts)) c.minSpan = running ? 10 : 0;
    for (const id of ["c-apply", "c-stop", "c-reset"]) $(id).disabled = !running;
    if (meta && meta.interactive) {
      if (running) delete document.body.dataset.idle; else document.body.dataset.idle = "";
    }

    const n = series.t.length - 1, w = n >= 0 ? series.w[n] : 1;
    const cur = (a) => (n >= 0 ? a[n] : null);
    const t = s.total;
    const errPct = t[1] ? (100 * t[2]) / t[1] : 0;
    const peakUsers = series.users.reduce((a, v) => Math.max(a, v), 0);
    if (running) {
      // Live: the last second, with the whole run underneath.
      const fps = cur(series.fail) / w;
      kpi("k-rps", fmtNum(cur(series.req) / w), `mean ${fmtNum(s.rps)}/s`);
      kpi("k-fps", fmtNum(fps), `${errPct.toFixed(2)}% of requests failed`, fps > 0 ? "bad" : "");
      kpi("k-p50", ms(cur(series.p50)), "last second");
      kpi("k-p95", ms(cur(series.p95)), `whole run ${fmtFig(t[4])} ms`);
      kpi("k-p99", ms(cur(series.p99)), `whole run ${fmtFig(t[5])} ms`);
    } else {
      // Ended: the whole run.
      const secs = Math.max(s.elapsed, 1e-9);
      const peak = series.req.reduce((a, v, i) => Math.max(a, v / series.w[i]), 0);
      kpi("k-rps", fmtNum(s.rps), `mean · peak ${fmtNum(peak)}/s`);
      kpi("k-fps", fmtNum(t[2] / secs), `${errPct.toFixed(2)}% of requests failed`, t[2] ? "bad" : "");
      kpi("k-p50", ms(t[3]), "whole run");
      kpi("k-p95", ms(t[4]), "whole run");
      kpi("k-p99", ms(t[5]), `whole run · max ${fmtFig(t[8])} ms`);
    }
    const usersSub = s.target_rate !== null && s.target_rate !== undefined
      ? `target ${fmtNum(s.target_rate)} arrivals/s` + (s.dropped ? ` · ${fmtInt(s.dropped)} dropped` : "")
      : running ? `target ${s.target_users}` : "peak during the run";
    kpi("k-users", fmtNum(running ? s.users : peakUsers), usersSub, s.dropped ? "warn" : "");
    kpi("k-total", fmtInt(t[1]), `${fmtInt(s.iterations)} iterations`);
    $("rate-head").textContent = running ? "Current RPS" : "RPS";
    $("fail-rate-head").textContent = running ? "Current Failures/s" : "Failures/s";
    const g = s.gen;
    kpi("k-gen", g.saturated ? "saturated" : `${fmtNum(g.cpu)}<small>% cpu</small>`,
      `lag p99 ${fmtNum(g.lag_p99)} ms`,
      g.saturated ? "warn" : "");
    $("k-gen").parentElement.title = g.saturated || "";
    $("foot-detail").textContent = s.detail ? `Run ended: ${s.detail}.` : "";
    $("foot-gen").textContent = g.saturated
      ? `Warning: ${g.saturated}.`
      : `generator: ${fmtNum(g.cpu)}% cpu, scheduling lag p99 ${fmtNum(g.lag_p99)} ms, max ${fmtNum(g.lag_max)} ms`;
    $("foot-gen").classList.toggle("warn-text", !!g.saturated);

    renderSlos(s);
    renderFailures(s);
    renderStats(s);
    renderSearch(s.search);
  }

  // A capacity search: each step's offered load against what was achieved, and the
  // first latency line's measured value against its limit.
  // Steps: [level, achieved, p50, p95, p99, error rate, dropped, verdict, phase, line value].
  function renderSearch(c) {
    $("capacity").hidden = !c;
    if (!c) return;
    const xs = c.steps.map((_, i) => i + 1);
    charts.capLoad.minSpan = 1;
    charts.capLat.minSpan = 1;
    charts.capLoad.setData(xs, [c.steps.map((st) => st[0]), c.steps.map((st) => st[1])]);
    charts.capLoad.opts.series[0].label = c.axis === "users" ? "offered users" : "offered /s";
    if (c.line) {
      $("cap-lat-title").textContent = `${c.line[0]}, by step`;
      charts.capLat.setData(xs, [c.steps.map((st) => st[9]), c.steps.map(() => c.line[1])]);
    } else {
      $("cap-lat-title").textContent = "p95 by step";
      charts.capLat.setData(xs, [c.steps.map((st) => st[3]), []]);
    }
    $("cap-answer").textContent = c.answer;
    $("cap-body").innerHTML = c.steps.map((st, i) => {
      const pill = st[7] === "pass" ? '<span class="pill pass">PASS</span>'
        : st[7] === "fail" ? '<span class="pill fail">FAIL</span>' : '<span class="pill wait">UNTRUSTED</span>';
      return `<tr><td class="num">${i + 1}</td><td>${esc(st[8])}</td><td class="num">${fmtNum(st[0])}</td><td class="num">${fmtFig(st[1])}</td>` +
        `<td class="num">${fmtFig(st[2])}</td><td class="num">${fmtFig(st[3])}</td><td class="num">${fmtFig(st[4])}</td>` +
        `<td class="num">${fmtNum(st[5] * 100)}%</td><td class="num">${fmtInt(st[6])}</td><td class="num">${pill}</td></tr>`;
    }).join("");
  }

  function renderSlos(s) {
    const rows = (meta ? meta.slos : []).map((text, i) => {
      const v = s.slos[i] || [null, false, "–", ""];
      const measured = v[0] !== null;
      const pill = !measured ? '<span class="pill wait">no data</span>'
        : v[1] ? '<span class="pill pass">PASS</span>' : '<span class="pill fail">FAIL</span>';
      return `<tr><td class="name">${esc(text)}</td><td class="num">${esc(v[2])}</td><td class="num">${esc(v[3])}</td><td class="num">${pill}</td></tr>`;
    });
    $("slo-body").innerHTML = rows.join("") || '<tr class="empty"><td colspan="4">no SLOs</td></tr>';
    const failed = s.slos.filter((v) => v[0] !== null && !v[1]).length;
    $("slo-summary").textContent = s.slos.length ? (failed ? `${failed} of ${s.slos.length} failing` : `all ${s.slos.length} holding`) : "";
  }

  function renderFailures(s) {
    const name = (id) => (meta && meta.requests[id] ? meta.requests[id][1] : "#" + id);
    const rows = s.failures.slice(0, 200).map((f) =>
      `<tr><td class="name">${esc(name(f[0]))}</td><td class="name">${esc(f[1])}</td><td class="num">${fmtInt(f[2])}</td></tr>`);
    $("fail-body").innerHTML = rows.join("") || '<tr class="empty"><td colspan="3">no failures</td></tr>';
    const total = s.failures.reduce((a, f) => a + f[2], 0);
    $("fail-summary").textContent = total ? `${fmtInt(total)} in ${s.failures.length} group${s.failures.length > 1 ? "s" : ""}` : "";
  }

  function statCells(r) {
    const f = (v) => fmtFig(v);
    return `<td class="num">${fmtInt(r[1])}</td><td class="num${r[2] ? " fails-nz" : ""}">${fmtInt(r[2])}</td>` +
      `<td class="num">${f(r[3])}</td><td class="num">${f(r[4])}</td><td class="num">${f(r[5])}</td>` +
      `<td class="num">${f(r[6])}</td><td class="num">${f(r[7])}</td><td class="num">${f(r[8])}</td>` +
      `<td class="num">${fmtInt(r[9])}</td><td class="num">${f(r[10])}</td><td class="num">${f(r[11])}</td>`;
  }

  function renderStats(s) {
    if (!meta) return;
    const filter = $("filter").value.trim().toLowerCase();
    const req = (r) => meta.requests[r[0]] || ["", "#" + r[0]];
    let rows = s.rows.filter((r) => !filter || req(r)[1].toLowerCase().includes(filter));
    const key = sort.col === "n" ? (r) => req(r)[1].toLowerCase() : sort.col === "m" ? (r) => req(r)[0] : (r) => r[+sort.col];
    rows = rows.slice().sort((a, b) => {
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (sort.asc ? 1 : -1);
    });
    $("stats-body").innerHTML = rows.map((r) =>
      `<tr><td class="method">${esc(req(r)[0])}</td><td class="name">${esc(req(r)[1])}</td>${statCells(r)}</tr>`).join("")
      || '<tr class="empty"><td colspan="13">no requests match</td></tr>';
    $("stats-foot").innerHTML = `<tr><td></td><td>Aggregated</td>${statCells(s.total)}</tr>`;
    for (const th of document.querySelectorAll("#stats th[data-col]")) {
      th.classList.toggle("sorted", th.dataset.col === sort.col);
      th.classList.toggle("asc", th.dataset.col === sort.col && sort.asc);
    }
  }

  for (const th of document.querySelectorAll("#stats th[data-col]")) {
    th.addEventListener("click", () => {
      const col = th.dataset.col;
      if (sort.col === col) sort.asc = !sort.asc; else { sort.col = col; sort.asc = col === "n" || col === "m"; }
      if (state) renderStats(state);
    });
  }
  $("filter").addEventListener("input", () => { if (state) renderStats(state); });

  // ---- the HTML report: everything is in the page ----------------------------------
  const embedded = document.getElementById("swarm-data");
  if (embedded) {
    document.body.classList.add("report");
    const data = JSON.parse(embedded.textContent);
    applyMeta(data.meta);
    addPoints(data.points);
    applyState(data.state);
    if (data.workers) renderWorkers(data.workers);
    $("controls").hidden = true;
    $("foot-detail").textContent = `Report of a run of ${data.meta.name}. ` + $("foot-detail").textContent;
    return;
  }

  // ---- live: the stream and the controls -------------------------------------------
  const menu = $("downloads-items");
  $("downloads-btn").addEventListener("click", (e) => { e.stopPropagation(); menu.hidden = !menu.hidden; });
  document.addEventListener("click", () => { menu.hidden = true; });
  $("controls").hidden = false;
  for (const id of ["c-users", "c-spawn", "c-rate", "c-duration"]) {
    $(id).addEventListener("input", () => { $(id).dataset.dirty = "1"; });
  }

  function note(text, error) {
    const el = $("c-note");
    el.textContent = text;
    el.classList.toggle("error", !!error);
  }

  async function post(path, body) {
    const r = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Swarm-Request": "1" },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(text || r.statusText);
    return text;
  }
  const num = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
  function loadSettings() {
    if (document.body.dataset.model === "open") return { action: "rate", rate: num("c-rate") };
    return { action: "users", users: num("c-users"), spawn_rate: num("c-spawn") };
  }
  async function act(path, body, done) {
    try { await post(path, body); note(done); } catch (e) { note(e.message, true); }
  }

  $("control-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const s = loadSettings();
    act("/api/control", s, s.action === "rate" ? `arrival rate set to ${s.rate}/s` : `steering to ${s.users} users`);
    for (const id of ["c-users", "c-spawn", "c-rate"]) delete $(id).dataset.dirty;
  });
  $("c-start").addEventListener("click", () => {
    const s = loadSettings();
    s.duration = $("c-duration").value.trim() || null;
    delete s.action;
    act("/api/start", s, "run started");
  });
  $("c-stop").addEventListener("click", () => act("/api/control", { action: "stop" }, "stopping…"));
  $("c-reset").addEventListener("click", () => act("/api/control", { action: "reset" }, "statistics reset"));

  function connect() {
    const es = new EventSource("/api/stream");
    es.addEventListener("run", (e) => {
      clearSeries();
      addPoints([]);
      applyMeta(JSON.parse(e.data));
    });
    es.addEventListener("snap", (e) => {
      const d = JSON.parse(e.data);
      if (d.reset) clearSeries();
      addPoints(d.points);
      applyState(d.state);
    });
    es.addEventListener("idle", (e) => {
      clearSeries();
      addPoints([]);
      applyMeta(JSON.parse(e.data));
      renderSlos({ slos: [] });
      const badge = $("state-badge");
      badge.dataset.state = "idle";
      badge.textContent = meta.interactive ? "idle" : "starting";
      if (meta.interactive) note("set the load and start a run");
    });
    es.onerror = () => {
      const badge = $("state-badge");
      if (!state || state.state === "running") { badge.dataset.state = "disconnected"; badge.textContent = "reconnecting"; }
    };
  }
  connect();

  // ---- a run on many machines: the workers table -----------------------------------
  // A worker lost mid-run (`--on-worker-loss continue`) leaves a gap in the run's
  // load from that moment: said above the charts, and marked on each time chart.
  // The live page polls the rows; the HTML report embeds them (without the live
  // figures, which are null there).
  function renderWorkers(rows) {
    $("workers-panel").hidden = rows.length === 0;
    const lost = rows.filter((w) => w.lost_at_s !== null && w.lost_at_s !== undefined);
    $("workers-summary").textContent = `${rows.length} workers` + (lost.length ? ` · ${lost.length} lost` : "");
    $("workers-body").innerHTML = rows.map((w) => {
      const notes = [];
      if (w.lost_at_s !== null && w.lost_at_s !== undefined) notes.push(`lost at ${w.lost_at_s.toFixed(1)}s: ${w.error || ""}`);
      if (w.saturated) notes.push(`saturated: ${w.saturated}`);
      return `<tr data-state="${esc(w.state)}"><td class="name">${esc(w.name)}</td><td>${esc(w.state)}</td>` +
        `<td class="num">${fmtInt(w.users)}</td><td class="num">${fmtInt(w.rps)}</td>` +
        `<td class="num">${fmtInt(w.cpu_percent)}</td><td class="num">${fmtNum(w.lag_p99_ms)}</td>` +
        `<td>${esc(notes.join("; "))}</td></tr>`;
    }).join("");
    const gap = $("gap-note");
    gap.hidden = lost.length === 0;
    gap.innerHTML = lost.map((w) => `<div>Worker <b>${esc(w.name)}</b> was lost at ${w.lost_at_s.toFixed(1)}s` +
      `${w.error ? ` (${esc(w.error)})` : ""}: its load is missing from then on.</div>`).join("");
    const marks = lost.map((w) => ({ x: w.lost_at_s, label: `${w.name} lost` }));
    for (const c of [charts.rps, charts.lat, charts.users]) {
      if (JSON.stringify(c.marks) !== JSON.stringify(marks)) c.setMarks(marks);
    }
  }
  async function pollWorkers() {
    try {
      const r = await fetch("/api/workers", { credentials: "same-origin" });
      if (r.ok) renderWorkers((await r.json()).workers);
    } catch (e) { /* the stream's badge already says the dashboard is unreachable */ }
  }
  pollWorkers();
  setInterval(pollWorkers, 1000);
})();
