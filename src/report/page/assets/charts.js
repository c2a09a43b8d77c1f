// swarm's time-series charts: a small canvas line chart, written for this page.
// Data is columnar: xs (seconds) and one array of values per series. Redraws are
// coalesced to one per animation frame, and the canvas follows devicePixelRatio.
"use strict";

const SwarmCharts = (() => {
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function fmtTime(s) {
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function fmtNum(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
    if (a >= 100) return v.toFixed(0);
    const text = a >= 10 ? v.toFixed(1) : v.toFixed(2);
    return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
  }

  // A measured figure: three significant digits, zeros kept (1.00, 12.3, 0.412), so
  // a measured 1.00 s never reads like a limit of 1 s. Axes use fmtNum.
  function fmtFig(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e8 ? 0 : a >= 1e7 ? 1 : 2) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
    if (a >= 100) return v.toFixed(0);
    return v.toFixed(a >= 10 ? 1 : a >= 1 ? 2 : 3);
  }

  // A "nice" step for about `n` ticks over [0, max].
  function niceStep(max, n) {
    const raw = max / n, pow = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / pow;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * pow;
  }
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800];

  class LineChart {
    // opts: { series: [{ label, color: "--c1", unit }], unit, legend: element, stepped,
    //         xfmt: how x values read (times by default) }
    constructor(canvas, opts) {
      this.canvas = canvas;
      this.opts = opts;
      this.xs = [];
      this.ys = opts.series.map(() => []);
      this.hover = null;
      this.pending = false;
      this.points = 0; // points drawn in the last frame (read by tests)
      this.minSpan = 10; // seconds the x axis spans at least
      this.marks = []; // [{ x, label }]: moments marked across the chart (a lost worker)
      canvas.dataset.points = "0";
      canvas.dataset.marks = "0";
      this.tip = document.createElement("div");
      this.tip.className = "tooltip";
      this.tip.hidden = true;
      document.body.appendChild(this.tip);
      canvas.addEventListener("mousemove", (e) => { this.hover = e; this.draw(); });
      canvas.addEventListener("mouseleave", () => { this.hover = null; this.tip.hidden = true; this.draw(); });
      new ResizeObserver(() => this.draw()).observe(canvas);
    }

    setData(xs, ys) { this.xs = xs; this.ys = ys; this.draw(); }

    setMarks(marks) { this.marks = marks; this.draw(); }

    draw() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.render(); });
    }

    render() {
      const c = this.canvas, dpr = window.devicePixelRatio || 1;
      const w = c.clientWidth, h = c.clientHeight;
      if (!w || !h) return;
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, h);
      const font = "11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
      g.font = font;
      const xs = this.xs, n = xs.length;
      let ymax = 0;
      for (const s of this.ys) for (let i = 0; i < s.length; i++) if (s[i] > ymax) ymax = s[i];
      ymax = ymax > 0 ? ymax * 1.12 : 1;
      const step = niceStep(ymax, 4);
      ymax = Math.ceil(ymax / step) * step;
      const labels = [];
      for (let v = 0; v <= ymax + step / 2; v += step) labels.push(v);
      const padL = Math.max(...labels.map((v) => g.measureText(fmtNum(v)).width)) + 12;
      const padR = 10, padT = 8, padB = 22;
      const pw = w - padL - padR, ph = h - padT - padB;
      // A marked moment before the first point (a worker lost in the run's first
      // second) widens the axis rather than going unseen.
      const x0 = n ? Math.min(xs[0] - (n > 1 ? 0 : 1), ...this.marks.map((m) => m.x)) : 0;
      const x1 = n ? Math.max(xs[n - 1], x0 + (this.minSpan || 0), x0 + 1) : 60;
      const X = (x) => padL + ((x - x0) / (x1 - x0)) * pw;
      const Y = (y) => padT + ph - (y / ymax) * ph;

      // Grid and axes.
      g.strokeStyle = css("--grid");
      g.fillStyle = css("--axis");
      g.lineWidth = 1;
      g.textAlign = "right";
      g.textBaseline = "middle";
      for (const v of labels) {
        const y = Math.round(Y(v)) + 0.5;
        g.beginPath(); g.moveTo(padL, y); g.lineTo(w - padR, y); g.stroke();
        g.fillText(fmtNum(v), padL - 6, y);
      }
      const span = x1 - x0, tstep = TIME_STEPS.find((s) => span / s <= 6) || 28800;
      g.textAlign = "center";
      g.textBaseline = "top";
      for (let t = Math.ceil(x0 / tstep) * tstep; t <= x1; t += tstep) {
        const x = Math.round(X(t)) + 0.5;
        g.beginPath(); g.moveTo(x, padT); g.lineTo(x, padT + ph); g.stroke();
        const label = (this.opts.xfmt || fmtTime)(t), lw = g.measureText(label).width / 2;
        if (x + lw <= w && x - lw >= padL - 4) g.fillText(label, x, padT + ph + 6);
      }

      // Marked moments: a dashed line from top to bottom, labelled at the top.
      let marked = 0;
      g.textAlign = "left";
      for (const m of this.marks) {
        if (!n || m.x < x0 || m.x > x1) continue;
        const x = Math.round(X(m.x)) + 0.5;
        g.strokeStyle = css("--warn");
        g.fillStyle = css("--warn");
        g.setLineDash([5, 4]);
        g.beginPath(); g.moveTo(x, padT); g.lineTo(x, padT + ph); g.stroke();
        g.setLineDash([]);
        g.fillText(m.label, x + 4, padT + 2);
        marked++;
      }
      c.dataset.marks = String(marked);

      // Lines, with a soft fill under the first series.
      let drawn = 0;
      this.opts.series.forEach((s, si) => {
        const ys = this.ys[si];
        if (!ys || !n) return;
        const color = css(s.color);
        g.beginPath();
        for (let i = 0; i < n; i++) {
          const x = X(xs[i]), y = Y(ys[i] || 0);
          if (i === 0) g.moveTo(x, y);
          else if (this.opts.stepped) { g.lineTo(x, Y(ys[i - 1] || 0)); g.lineTo(x, y); }
          else g.lineTo(x, y);
        }
        drawn += n;
        g.strokeStyle = color;
        g.lineWidth = 1.6;
        g.lineJoin = "round";
        g.stroke();
        if (si === 0) {
          g.lineTo(X(xs[n - 1]), Y(0));
          g.lineTo(X(xs[0]), Y(0));
          g.closePath();
          const grad = g.createLinearGradient(0, padT, 0, padT + ph);
          grad.addColorStop(0, color + "40");
          grad.addColorStop(1, color + "00");
          g.fillStyle = grad;
          g.fill();
        }
        if (n === 1) { g.fillStyle = color; g.beginPath(); g.arc(X(xs[0]), Y(ys[0] || 0), 2.5, 0, 7); g.fill(); }
      });
      this.points = drawn;
      c.dataset.points = String(drawn);
      if (!n) {
        g.fillStyle = css("--muted");
        g.textAlign = "center";
        g.textBaseline = "middle";
        g.fillText("waiting for data…", padL + pw / 2, padT + ph / 2);
      }
      this.renderLegend();
      this.renderHover(g, X, Y, padT, ph, padL, pw);
    }

    renderLegend() {
      const el = this.opts.legend;
      if (!el) return;
      const last = this.xs.length - 1;
      const parts = this.opts.series.map((s, si) => {
        const v = last >= 0 ? this.ys[si][last] : null;
        return `<span><i style="background:${css(s.color)}"></i>${s.label} <b>${fmtNum(v)}</b></span>`;
      });
      const html = parts.join("");
      if (el.innerHTML !== html) el.innerHTML = html;
    }

    renderHover(g, X, Y, padT, ph, padL, pw) {
      const e = this.hover, n = this.xs.length;
      if (!e || !n) { this.tip.hidden = true; return; }
      const rect = this.canvas.getBoundingClientRect();
      const mx = e.clientX - rect.left;
      if (mx < padL || mx > padL + pw) { this.tip.hidden = true; return; }
      let best = 0;
      for (let i = 1; i < n; i++) if (Math.abs(X(this.xs[i]) - mx) < Math.abs(X(this.xs[best]) - mx)) best = i;
      const x = Math.round(X(this.xs[best])) + 0.5;
      g.strokeStyle = css("--axis");
      g.setLineDash([3, 3]);
      g.beginPath(); g.moveTo(x, padT); g.lineTo(x, padT + ph); g.stroke();
      g.setLineDash([]);
      let html = `<div class="t">${(this.opts.xfmt || fmtTime)(this.xs[best])}</div>`;
      this.opts.series.forEach((s, si) => {
        const v = this.ys[si][best];
        g.fillStyle = css(s.color);
        g.beginPath(); g.arc(x, Y(v || 0), 3, 0, 7); g.fill();
        html += `<div><i style="background:${css(s.color)}"></i>${s.label}: <b>${fmtNum(v)}</b> ${s.unit || ""}</div>`;
      });
      this.tip.innerHTML = html;
      this.tip.hidden = false;
      const tw = this.tip.offsetWidth;
      const left = e.clientX + 14 + tw > window.innerWidth ? e.clientX - tw - 14 : e.clientX + 14;
      this.tip.style.left = left + "px";
      this.tip.style.top = e.clientY + 12 + "px";
    }
  }

  return { LineChart, fmtTime, fmtNum, fmtFig };
})();
