// Outpost web console: one page, no build step, no dependencies.
// Data: GET /api/* once, then Server-Sent Events from /api/events.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const S = { csrf: "", overview: null, sensors: [], clients: null, topics: new Map(),
    hist: {}, span: "30m", qspan: "10m", collapsed: new Set(["$SYS"]), es: null, dirtyTopics: true, dirtySensors: true };

  // ---- helpers ----
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  function num(v, d) { if (v == null) return "–"; const a = Math.abs(v); d = d ?? (a >= 100 ? 0 : a >= 10 ? 1 : 2); return v.toLocaleString(undefined, { maximumFractionDigits: d, minimumFractionDigits: 0 }); }
  function bytes(b) { if (!b) return "0 B"; const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (b >= 1024 && i < 4) { b /= 1024; i++; } return num(b, i ? 1 : 0) + " " + u[i]; }
  function dur(s) {
    if (!s) return "0 s"; s = Math.round(s);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
    if (d) return d + " d " + h + " h"; if (h) return h + " h " + m + " min"; if (m) return m + " min " + x + " s"; return x + " s";
  }
  function ago(t) { if (!t) return "never"; const s = (Date.now() - Date.parse(t)) / 1000; return (s < 1 ? "just now" : dur(s) + " ago") + " (" + new Date(t).toLocaleTimeString() + ")"; }
  function set(id, v) { const e = $(id); if (e && e.textContent !== String(v)) e.textContent = v; }
  async function api(path, opts) {
    opts = opts || {};
    const h = { "Accept": "application/json" };
    if (opts.body) { h["Content-Type"] = "application/json"; h["X-CSRF-Token"] = S.csrf; }
    const r = await fetch("api/" + path, { method: opts.body ? "POST" : "GET", headers: h, body: opts.body ? JSON.stringify(opts.body) : undefined, credentials: "same-origin" });
    let j = null; try { j = await r.json(); } catch (e) { /* empty */ }
    if (r.status === 401 && path !== "login") { showLogin(); }
    if (!r.ok) throw new Error((j && j.error) || r.status + " " + r.statusText);
    return j;
  }

  // A small SVG line chart: series = [{name, pts:[[t,v]...]}].
  const colors = ["#1769aa", "#c5221f", "#1e8e3e", "#b26a00"];
  function chart(series, o) {
    o = o || {}; const W = o.w || 480, H = o.h || 140, L = 58, R = 8, T = 8, B = 20;
    let t0 = Infinity, t1 = -Infinity, v0 = Infinity, v1 = -Infinity;
    for (const s of series) for (const [t, v] of s.pts) { t0 = Math.min(t0, t); t1 = Math.max(t1, t); v0 = Math.min(v0, v); v1 = Math.max(v1, v); }
    if (o.from) t0 = Math.min(t0, o.from);
    if (!isFinite(t0)) return '<svg viewBox="0 0 ' + W + ' ' + H + '"><text x="' + W / 2 + '" y="' + H / 2 + '" text-anchor="middle" fill="#6b7785" font-size="13">no data yet</text></svg>';
    if (o.zero) v0 = Math.min(0, v0);
    if (v1 - v0 < 1e-9) { v1 += 1; v0 -= o.zero && v0 === 0 ? 0 : 1; }
    if (t1 - t0 < 1) t1 = t0 + 1;
    const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R), y = (v) => T + (1 - (v - v0) / (v1 - v0)) * (H - T - B);
    let g = '<svg viewBox="0 0 ' + W + " " + H + '" role="img">';
    for (const f of [0, 0.5, 1]) { const v = v0 + (v1 - v0) * f, yy = y(v).toFixed(1); g += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + yy + '" y2="' + yy + '" stroke="#eef1f4"/><text x="' + (L - 4) + '" y="' + (+yy + 4) + '" text-anchor="end" font-size="11" fill="#6b7785">' + esc(num(v)) + "</text>"; }
    const tl = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    g += '<text x="' + L + '" y="' + (H - 5) + '" font-size="11" fill="#6b7785">' + tl(t0) + '</text><text x="' + (W - R) + '" y="' + (H - 5) + '" font-size="11" text-anchor="end" fill="#6b7785">' + tl(t1) + "</text>";
    series.forEach((s, i) => {
      if (!s.pts.length) return;
      const p = s.pts.map(([t, v]) => x(t).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
      g += '<polyline fill="none" stroke="' + colors[i % 4] + '" stroke-width="1.6" points="' + p + '"/>';
      if (s.pts.length === 1) { const [t, v] = s.pts[0]; g += '<circle cx="' + x(t).toFixed(1) + '" cy="' + y(v).toFixed(1) + '" r="2.5" fill="' + colors[i % 4] + '"/>'; }
      if (s.name) g += '<text x="' + (L + 6 + i * 90) + '" y="' + (T + 10) + '" font-size="11" fill="' + colors[i % 4] + '">' + esc(s.name) + "</text>";
    });
    return g + "</svg>";
  }

  // ---- pages ----
  function page() {
    const p = (location.hash || "#overview").slice(1);
    for (const s of document.querySelectorAll(".page")) s.classList.toggle("hidden", s.id !== "page-" + p);
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("on", a.dataset.page === p);
    if (p === "queue") loadQueue();
  }

  function uplinkBadge(u) {
    const st = u.state || "disabled";
    return st === "connected" ? "ok" : st === "disabled" ? "" : st === "connecting" ? "warn" : "bad";
  }

  function renderOverview(o) {
    S.overview = o;
    set("version", o.version ? "v" + o.version : "");
    set("o-in", num(o.rate_in) + " /s"); set("o-out", num(o.rate_out) + " /s");
    set("o-clients", o.broker.clients_connected); set("o-subs", o.broker.subscriptions);
    set("o-retained", o.broker.retained); set("o-uptime", dur(o.uptime));
    const u = o.uplink, b = $("o-uplink-state");
    b.className = "badge " + uplinkBadge(u); set("o-uplink-state", u.state);
    set("o-uplink-url", u.url || (u.enabled ? "–" : "uplink off (no cloud configured)"));
    set("o-uplink-conn", u.last_connect ? ago(u.last_connect) : "never");
    set("o-uplink-disc", u.last_disconnect ? ago(u.last_disconnect) : "never");
    set("o-uplink-err", u.last_error || (u.paused ? "paused: " + u.paused : "–"));
    set("o-uplink-inflight", u.inflight ?? 0); set("o-uplink-sent", (u.sent ?? 0) + " / " + (u.acked ?? 0));
    const q = o.queue;
    for (const p of ["o-q-", "q-"]) {
      set(p + "depth", num(q.depth, 0)); set(p + "bytes", bytes(q.bytes)); set(p + "age", q.oldest_age ? dur(q.oldest_age) : "–");
      set(p + "rate", num(q.rate) + " /s"); set(p + "eta", q.depth ? (q.eta ? dur(q.eta) : "– (not draining)") : "empty");
    }
    set("q-counts", q.appends + " / " + q.acked); set("q-drops", q.dropped + " / " + q.rejected); set("q-disk", bytes(q.disk_bytes));
    $("q-lanes").innerHTML = (q.lanes || []).map((l) => "<tr><td>" + esc(l.lane) + "</td><td>" + l.depth + "</td><td>" + bytes(l.bytes) + "</td><td>" + (l.oldest_age ? dur(l.oldest_age) : "–") + "</td></tr>").join("");
    renderSensorBriefs(o.sensors);
    set("o-sn", o.mqttsn ? Object.entries(o.mqttsn.clients || {}).map(([k, v]) => v + " " + k).join(", ") + " · " + o.mqttsn.publish_in + " publishes in" : "gateway off");
    $("o-health").innerHTML = o.healthy ? '<span class="badge ok">healthy</span>' : '<span class="badge bad">unhealthy</span> ' + esc(o.health);
    // Rates: keep the last 10 minutes locally.
    const t = Date.parse(o.time) / 1000;
    S.rin = (S.rin || []).concat([[t, o.rate_in]]).filter((p) => p[0] > t - 600);
    S.rout = (S.rout || []).concat([[t, o.rate_out]]).filter((p) => p[0] > t - 600);
    $("o-rates").innerHTML = chart([{ name: "in /s", pts: S.rin }, { name: "out /s", pts: S.rout }], { h: 110, zero: true });
    if (location.hash === "#queue" && S.qspan === "10m") { S.qd = (S.qd || []).concat([[t, q.depth]]); drawQueue(); }
  }

  // The overview's sensor list: health, and the latest values when known.
  function renderSensorBriefs(briefs) {
    const full = new Map(S.sensors.map((s) => [s.name, s]));
    $("o-sensors").innerHTML = briefs.length ? briefs.map((b) => {
      const s = full.get(b.name), vs = s && s.last ? s.last.values : [];
      return '<li><span class="dot ' + (b.state === "ok" ? "ok" : b.state === "error" ? "bad" : "warn") + '"></span><b>' + esc(b.name) + '</b> <span class="muted">' + esc(b.state) + (b.error ? ": " + esc(b.error) : "") + "</span>" +
        (vs.length ? '<div class="muted">' + vs.map((v) => esc(v.quantity) + " " + esc(num(v.value)) + (v.unit ? " " + esc(v.unit) : "")).join(" · ") + "</div>" : "") + "</li>";
    }).join("") : '<li class="muted">no sensors configured</li>';
  }

  function renderClients(c) {
    S.clients = c;
    let sum = c.connected + " MQTT client" + (c.connected === 1 ? "" : "s") + " connected, " + c.disconnected + " persistent session(s) offline";
    if (c.mqttsn) sum += " · MQTT-SN: " + Object.entries(c.mqttsn).map(([k, v]) => v + " " + k).join(", ");
    if (!c.detail) sum += " · the broker does not list its sessions yet: counts only";
    set("c-summary", sum);
    $("c-rows").innerHTML = c.sessions.map((s) => '<tr data-client="' + esc(s.id) + '"><td>' + esc(s.id) + "</td><td>" + esc(s.protocol) + '</td><td><span class="dot ' + (s.state === "connected" || s.state === "active" || s.state === "awake" ? "ok" : s.state === "asleep" ? "warn" : "bad") + '"></span>' + esc(s.state) +
      "</td><td>" + esc(s.username || "") + "</td><td>" + esc(s.remote || "") + "</td><td>" + s.subscriptions.map((x) => esc(x.filter) + " <span class=muted>q" + x.qos + "</span>").join("<br>") + "</td><td>" + s.inflight + "</td><td>" + s.queued + "</td></tr>").join("");
  }

  function renderSensors() {
    const box = $("s-list");
    for (const s of S.sensors) {
      let card = box.querySelector('[data-sensor-card="' + CSS.escape(s.name) + '"]');
      if (!card) {
        card = document.createElement("div"); card.className = "card"; card.dataset.sensorCard = s.name;
        card.innerHTML = '<h3><span class="dot"></span><span class="nm"></span> <span class="muted drv"></span> <button class="span rd">read now</button></h3><div class="muted st"></div><div class="vals"></div><div class="plots"></div>';
        card.querySelector(".rd").addEventListener("click", () => readNow(s.name, card));
        box.appendChild(card);
      }
      card.querySelector(".dot").className = "dot " + (s.state === "ok" ? "ok" : s.state === "error" ? "bad" : "warn");
      card.querySelector(".nm").textContent = s.name;
      card.querySelector(".drv").textContent = s.driver + " on " + s.bus + (s.simulated ? " (simulated)" : "");
      card.querySelector(".st").textContent = s.state + (s.error ? ": " + s.error : "") + " · " + s.topic + " every " + dur(s.interval) + (s.last ? " · read " + ago(s.last.time) : "");
      const vals = card.querySelector(".vals");
      const vs = s.last ? s.last.values : [];
      const html = vs.map((v) => '<div data-sensor="' + esc(s.name) + '" data-quantity="' + esc(v.quantity) + '"><b>' + esc(num(v.value)) + " " + esc(v.unit || "") + "</b><span>" + esc(v.quantity) + "</span></div>").join("") || '<span class="muted">no reading yet</span>';
      if (vals.innerHTML !== html) vals.innerHTML = html;
      const h = S.hist[s.name];
      card.querySelector(".plots").innerHTML = h && h.series.length ? h.series.map((q) => '<div class="qname">' + esc(q.quantity) + (q.unit ? " (" + esc(q.unit) + ")" : "") + "</div>" + chart([{ pts: q.points }], { h: 90 })).join("") : "";
    }
  }

  async function loadHistory() {
    for (const s of S.sensors) {
      try { S.hist[s.name] = await api("sensors/" + encodeURIComponent(s.name) + "/history?span=" + S.span); } catch (e) { /* shown as empty */ }
    }
    renderSensors();
  }

  function addReadings(rs) {
    if (S.span !== "30m") return;
    for (const r of rs) {
      const h = S.hist[r.sensor]; if (!h) continue;
      const t = Math.floor(Date.parse(r.time) / 1000);
      for (const v of r.values) {
        let q = h.series.find((x) => x.quantity === v.quantity);
        if (!q) { q = { quantity: v.quantity, unit: v.unit, points: [] }; h.series.push(q); }
        q.points.push([t, v.value]);
        const cut = t - 1800; while (q.points.length && q.points[0][0] < cut) q.points.shift();
      }
    }
    S.dirtySensors = true;
  }

  async function readNow(name, card) {
    if (!confirm("Read sensor " + name + " now (not published)?")) return;
    const st = card.querySelector(".st");
    try { const r = await api("actions/read-sensor", { body: { name, confirm: true } }); st.textContent = "read now: " + r.values.map((v) => v.quantity + " " + num(v.value) + " " + (v.unit || "")).join(", "); }
    catch (e) { st.textContent = "read failed: " + e.message; }
  }

  // ---- topics ----
  function renderTopics() {
    const f = $("t-filter").value.toLowerCase();
    const list = [...S.topics.values()].filter((t) => !f || t.topic.toLowerCase().includes(f)).sort((a, b) => a.topic < b.topic ? -1 : 1);
    set("t-count", list.length + " of " + S.topics.size + " topics");
    const root = { c: new Map() };
    for (const t of list) {
      let n = root; const parts = t.topic.split("/");
      parts.forEach((p, i) => { let k = n.c.get(p); if (!k) { k = { c: new Map(), path: parts.slice(0, i + 1).join("/") }; n.c.set(p, k); } n = k; });
      n.t = t;
    }
    const out = [], now = Date.now();
    const walk = (n, d) => {
      for (const [name, k] of n.c) {
        const dir = k.c.size > 0, closed = S.collapsed.has(k.path);
        let row = '<div class="n ind' + Math.min(d, 7) + (k.t && now - Date.parse(k.t.updated) < 1500 ? " flash" : "") + '" data-topic="' + esc(k.path) + '"><span class="k' + (dir ? " dir" : "") + '" data-path="' + esc(k.path) + '">' + (dir ? (closed ? "▸ " : "▾ ") : "") + esc(name || "(empty)") + "</span>";
        if (k.t) row += '<span class="v">' + esc(k.t.base64 ? "base64:" + k.t.payload : k.t.payload) + (k.t.truncated ? "…" : "") + '</span><span class="m">q' + k.t.qos + (k.t.retained ? " retained" : "") + " · " + num(k.t.rate, 2) + "/s · " + k.t.count + "</span>";
        else if (dir) row += '<span class="v muted">' + k.c.size + " subtopic" + (k.c.size === 1 ? "" : "s") + "</span>";
        out.push(row + "</div>");
        if (dir && !closed) walk(k, d + 1);
      }
    };
    walk(root, 0);
    $("t-tree").innerHTML = out.join("") || '<div class="muted">no topics yet</div>';
  }
  // The overview's ten most recently updated topics ($SYS only on the Topics page).
  function renderRecent() {
    const list = [...S.topics.values()].filter((t) => !t.topic.startsWith("$")).sort((a, b) => Date.parse(b.updated) - Date.parse(a.updated)).slice(0, 10);
    $("o-recent").innerHTML = list.map((t) => '<div class="n" data-topic="' + esc(t.topic) + '"><span class="k">' + esc(t.topic) + '</span><span class="v">' +
      esc(t.base64 ? "base64:" + t.payload : t.payload) + '</span><span class="m">' + new Date(t.updated).toLocaleTimeString() + "</span></div>").join("") || '<div class="muted">no messages yet</div>';
  }
  async function loadTopics() { const l = await api("topics"); S.topics = new Map(l.topics.map((t) => [t.topic, t])); S.dirtyTopics = true; }

  // ---- queue ----
  async function loadQueue() {
    try {
      const q = await api("queue?span=" + S.qspan); S.qd = q.history; drawQueue();
      const recs = await api("queue/peek?n=20");
      $("q-peekrows").innerHTML = recs.length ? recs.map((r) => "<tr><td>" + esc(r.lane) + "</td><td>" + r.seq + "</td><td>" + ago(r.appended) + "</td><td>" + esc(r.topic) + "</td><td>" + r.qos + (r.retain ? " R" : "") + "</td><td>" + bytes(r.size) + '</td><td class="pl">' + esc(r.error ? "error: " + r.error : (r.base64 ? "base64:" : "") + (r.payload || "")) + "</td></tr>").join("") : '<tr><td colspan="7" class="muted">the queue is empty</td></tr>';
    } catch (e) { $("q-peekrows").innerHTML = '<tr><td colspan="7" class="err">' + esc(e.message) + "</td></tr>"; }
  }
  function drawQueue() { $("q-chart").innerHTML = chart([{ name: "depth", pts: S.qd || [] }], { zero: true }); }

  // ---- live updates ----
  function connect() {
    if (S.es) S.es.close();
    const es = new EventSource("api/events"); S.es = es;
    es.onopen = () => { $("live").className = "badge ok"; $("live").textContent = "live"; };
    es.onerror = () => { $("live").className = "badge bad"; $("live").textContent = "reconnecting"; };
    es.addEventListener("overview", (e) => renderOverview(JSON.parse(e.data)));
    es.addEventListener("clients", (e) => renderClients(JSON.parse(e.data)));
    es.addEventListener("sensors", (e) => {
      const ss = JSON.parse(e.data), known = S.sensors.map((s) => s.name).join();
      S.sensors = ss; S.dirtySensors = true;
      if (ss.map((s) => s.name).join() !== known) loadHistory();
    });
    es.addEventListener("readings", (e) => addReadings(JSON.parse(e.data)));
    es.addEventListener("topics", (e) => { for (const t of JSON.parse(e.data)) S.topics.set(t.topic, t); S.dirtyTopics = true; });
    es.addEventListener("topics-reset", () => loadTopics());
  }

  // ---- login ----
  function showLogin() { $("login").classList.remove("hidden"); for (const s of document.querySelectorAll(".page")) s.classList.add("hidden"); if (S.es) S.es.close(); }
  async function session() {
    const s = await api("session");
    S.csrf = s.csrf || "";
    set("who", s.user ? s.user : "");
    $("logout").classList.toggle("hidden", !s.user);
    if (s.login_required && !s.logged_in) { showLogin(); return false; }
    $("login").classList.add("hidden");
    return true;
  }
  async function start() {
    if (!(await session())) return;
    page();
    try { await loadTopics(); } catch (e) { /* events will fill it */ }
    try { const o = await api("overview"); S.rin = o.rates.in; S.rout = o.rates.out; renderOverview(o); } catch (e) { /* events will fill it */ }
    connect();
  }

  $("loginform").addEventListener("submit", async (e) => {
    e.preventDefault(); const f = e.target;
    try { await api("login", { body: { username: f.username.value, password: f.password.value } }); f.password.value = ""; set("loginerr", ""); start(); }
    catch (err) { set("loginerr", err.message); }
  });
  $("logout").addEventListener("click", async () => { try { await api("logout", { body: { confirm: true } }); } catch (e) { /* gone anyway */ } location.reload(); });
  $("pubform").addEventListener("submit", async (e) => {
    e.preventDefault(); const f = e.target;
    if (!confirm("Publish to " + f.topic.value + "?")) return;
    try { await api("actions/publish", { body: { topic: f.topic.value, payload: f.payload.value, qos: +f.qos.value, retain: f.retain.checked, confirm: true } }); set("pubres", "published " + new Date().toLocaleTimeString()); }
    catch (err) { set("pubres", "refused: " + err.message); }
  });
  $("q-purge").addEventListener("click", async () => {
    if (!confirm("Delete every queued message? They will never reach the cloud.")) return;
    try { const r = await api("actions/purge", { body: { lane: "", confirm: true } }); set("q-purgeres", "purged " + r.purged + " messages"); loadQueue(); }
    catch (err) { set("q-purgeres", "refused: " + err.message); }
  });
  $("q-peek").addEventListener("click", loadQueue);
  $("t-filter").addEventListener("input", () => { S.dirtyTopics = true; });
  $("t-tree").addEventListener("click", (e) => { const p = e.target.dataset && e.target.dataset.path; if (!p || !e.target.classList.contains("dir")) return; S.collapsed.has(p) ? S.collapsed.delete(p) : S.collapsed.add(p); S.dirtyTopics = true; });
  for (const b of document.querySelectorAll("button.span")) b.addEventListener("click", () => { S.span = b.dataset.span; for (const x of document.querySelectorAll("button.span")) x.classList.toggle("on", x === b); loadHistory(); });
  for (const b of document.querySelectorAll("button.qspan")) b.addEventListener("click", () => { S.qspan = b.dataset.span; for (const x of document.querySelectorAll("button.qspan")) x.classList.toggle("on", x === b); loadQueue(); });
  window.addEventListener("hashchange", page);
  // Redraw the heavy parts at most every 700 ms; refetch sensor history each minute.
  setInterval(() => {
    if (S.dirtyTopics) { S.dirtyTopics = false; renderTopics(); renderRecent(); }
    if (S.dirtySensors) { S.dirtySensors = false; renderSensors(); }
  }, 700);
  setInterval(() => { if (S.sensors.length) loadHistory(); }, 60000);
  start();
})();
