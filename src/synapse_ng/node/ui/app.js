// The node's dashboard. One snapshot of the node (GET /api/dashboard) is drawn into five sections; the
// node pushes a new one over server-sent events (/api/dashboard/events) whenever something changed.
// Everything another party wrote (titles, reasons, URLs) goes into the page as text, never as HTML.
"use strict";

const state = { snapshot: null, runId: null, run: null, runFetchedAt: 0 };

// ---------------------------------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const short = (id) => (id ? String(id).slice(0, 12) : "-");
const badge = (text, kind) => el("span", { class: `badge ${kind || text}` }, text);
const number = (value, digits = 3) => (value === null || value === undefined ? "-" : Number(value).toFixed(digits));
const when = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleTimeString() : "-");

function table(headers, rows) {
  return el("table", {}, el("tr", {}, headers.map((h) => el("th", {}, h))), rows);
}

function fill(sectionId, ...content) {
  const body = document.querySelector(`#${sectionId} .body`);
  body.replaceChildren(...content.flat().filter(Boolean));
}

// ------------------------------------------------------------------------------------------ charts

// A line chart of (x, y) series as SVG: each series {points: [[x, y]], color, dots, step, cls}, plus
// horizontal lines {y, label, color} (targets, the baseline).
function chart(series, lines, { width = 560, height = 200, xLabel = "", yLabel = "" } = {}) {
  const left = 56, right = 12, top = 10, bottom = 30;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]).concat(s.extendTo !== undefined ? [s.extendTo] : []));
  if (!series.some((s) => s.points.length)) return el("p", { class: "muted" }, "no measurements yet");
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).concat(lines.map((l) => l.y));
  let [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 0)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
  if (x0 === x1) x1 = x0 + 1;
  const X = (x) => left + ((width - left - right) * (x - x0)) / (x1 - x0);
  const Y = (y) => top + ((height - top - bottom) * (y1 - y)) / (y1 - y0);
  const parts = [
    svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#98a2b3" }),
    svg("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#98a2b3" }),
    svg("text", { x: (left + width) / 2, y: height - 6, "text-anchor": "middle" }, xLabel),
    svg("text", { x: 4, y: top + 8 }, yLabel),
  ];
  for (let i = 0; i <= 3; i++) {
    const y = y0 + ((y1 - y0) * i) / 3;
    parts.push(svg("text", { x: left - 4, y: Y(y) + 4, "text-anchor": "end" }, Number(y.toPrecision(4))));
    const x = x0 + ((x1 - x0) * i) / 3;
    parts.push(svg("text", { x: X(x), y: height - bottom + 14, "text-anchor": "middle" }, Number(x.toFixed(2))));
  }
  for (const line of lines) {
    parts.push(svg("line", { x1: left, x2: width - right, y1: Y(line.y), y2: Y(line.y), stroke: line.color || "#888", "stroke-dasharray": "5 4" }));
    parts.push(svg("text", { x: width - right, y: Y(line.y) - 4, "text-anchor": "end" }, line.label));
  }
  for (const s of series) {
    if (s.dots) {
      for (const [x, y, title] of s.points) {
        parts.push(svg("circle", { cx: X(x), cy: Y(y), r: 2.5, fill: s.color, class: s.cls || "" }, title ? svg("title", {}, title) : null));
      }
    } else if (s.points.length) {
      const path = [];
      s.points.forEach(([x, y], i) => {
        if (s.step && i > 0) path.push(`${X(x)},${Y(s.points[i - 1][1])}`);
        path.push(`${X(x)},${Y(y)}`);
      });
      if (s.extendTo !== undefined) path.push(`${X(s.extendTo)},${Y(s.points[s.points.length - 1][1])}`);
      parts.push(svg("polyline", { points: path.join(" "), fill: "none", stroke: s.color, "stroke-width": 2, class: s.cls || "" }));
    }
  }
  return svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" }, parts);
}

// ----------------------------------------------------------------------------------------- sections

function drawHeader(snap) {
  const n = snap.node;
  const engine = n.engine.enabled ? `engine on (${n.engine.provider}${n.engine.model ? "/" + n.engine.model : ""})` : "engine off";
  const evolving = n.evolving ? ` · evolving ${n.evolving.component}` : "";
  document.getElementById("node").textContent = `node ${short(n.id)} · ${n.url} · ${n.software} · ${engine}${evolving}`;
}

function drawNetwork(snap) {
  const rows = snap.peers.map((p) =>
    el("tr", { "data-peer": p.url },
      el("td", {}, p.url), el("td", { class: "mono" }, short(p.node_id)),
      el("td", {}, badge(p.reachable ? "reachable" : "unreachable", p.reachable ? "ok" : "bad")),
      el("td", {}, `${number(p.latency_ms, 1)} ms`), el("td", {}, number(p.reliability, 2)),
      el("td", {}, p.identity), el("td", {}, p.software || "-"),
      el("td", { class: "mono" }, Object.entries(p.components || {}).map(([c, v]) => `${c} ${short(v)}`).join(", ") || "-")));
  fill("network", snap.peers.length
    ? table(["peer", "id", "reachable", "latency", "reliability", "identity", "software", "live versions"], rows)
    : el("p", { class: "muted" }, "no peers"));
}

function drawHealth(snap) {
  const h = snap.health;
  const cards = h.targets.map((t) => {
    const points = h.history.filter(([, v]) => t.metric in v).map(([at, v]) => [(at - snap.node.now) / 60, v[t.metric]]);
    const latest = h.latest[t.metric];
    const breaches = h.consecutive[t.metric] || 0;
    return el("div", { class: "card", "data-metric": t.metric },
      el("strong", {}, t.metric), " ", el("span", { class: "muted" }, `${t.bound} ${t.limit}${t.component ? " · " + t.component : ""}`),
      el("div", {}, "latest ", el("span", { class: "mono" }, number(latest)), " · breaches in a row ", `${breaches}/${h.chronic_after}`),
      chart([{ points, color: "#1f6feb" }], [{ y: t.limit, label: "target", color: "#c62828" }], { width: 320, height: 140, xLabel: "minutes ago" }));
  });
  const latestIssue = new Map();  // one row per issue: the latest report of it
  for (const i of h.issues) latestIssue.set(`${i.affected_component}:${i.issue_type}:${i.issue_source}`, i);
  const issues = [...latestIssue.values()].reverse().map((i) =>
    el("tr", {}, el("td", {}, i.affected_component || "-"), el("td", {}, i.issue_source || "-"), el("td", {}, i.severity), el("td", {}, i.description)));
  const folded = [];  // the same action again and again is one row with a count
  for (const a of h.actions) {
    const last = folded[folded.length - 1];
    if (last && last.issue_key === a.issue_key && last.kind === a.kind && last.detail === a.detail) last.count += 1;
    else folded.push({ ...a, count: 1 });
  }
  const actions = folded.reverse().map((a) =>
    el("tr", {}, el("td", {}, when(a.at)), el("td", {}, a.issue_key || "-"), el("td", {}, badge(a.kind, "")),
      el("td", {}, (a.detail || a.proposal_id || "") + (a.count > 1 ? ` (×${a.count})` : ""))));
  fill("health", el("div", { class: "grid" }, cards),
    el("h3", {}, "Issues"), issues.length ? table(["component", "source", "severity", "latest report"], issues) : el("p", { class: "muted" }, "none"),
    el("h3", {}, "What the immune system did"), actions.length ? table(["at", "issue", "action", "detail"], actions) : el("p", { class: "muted" }, "nothing yet"));
}

function drawGovernance(snap) {
  if (!snap.proposals.length) return fill("governance", el("p", { class: "muted" }, "no proposals"));
  const cards = snap.proposals.map((p) => {
    const o = p.outcome || {};
    const left = p.deadline - snap.node.now;
    const verdict = p.verdict;
    const checks = verdict ? Object.entries(verdict.checks || {}).map(([name, ok]) => badge(name, ok ? "ok" : "bad")) : [];
    const votes = p.votes.map((v) =>
      el("tr", { "data-voter": v.voter }, el("td", { class: "mono" }, short(v.voter)), el("td", {}, badge(v.choice)), el("td", {}, v.reason)));
    return el("div", { class: "card", "data-proposal": p.id },
      el("div", {}, el("strong", {}, p.title), " ", badge(p.type, ""), " ", el("span", { class: "outcome" }, badge(o.status || "open"))),
      el("div", { class: "muted" }, `by ${short(p.author)} · ${p.params.component || ""} · `,
        left > 0 ? `closes in ${Math.round(left)} s` : `deadline ${when(p.deadline)}`),
      el("div", { class: "tally" }, `yes ${o.yes ?? "-"} · no ${o.no ?? "-"} · abstain ${o.abstain ?? "-"} · votes ${p.votes.length}/${p.members}`),
      verdict ? el("div", { class: "verdict" }, "this node's verification: ", badge(verdict.ok ? "passed" : "failed", verdict.ok ? "ok" : "bad"), " ", checks,
        verdict.improvement_pct !== null && verdict.improvement_pct !== undefined ? ` improvement ${number(verdict.improvement_pct)} %` : "",
        verdict.own_cases ? ` · own cases ${verdict.own_cases_passed}/${verdict.own_cases} (seed ${verdict.own_seed})` : "",
        verdict.reasons && verdict.reasons.length ? el("div", { class: "muted" }, verdict.reasons.join("; ")) : null) : null,
      votes.length ? table(["voter", "vote", "reason (its verification)"], votes) : el("p", { class: "muted" }, "no votes yet"));
  });
  fill("governance", cards);
}

function drawEvolution(snap) {
  const runs = snap.runs;
  if (!runs.length) {
    fill("evolution", el("p", { class: "muted" }, snap.node.engine.enabled ? "no engine runs yet" : "the engine is off on this node"), drawIslands(snap.islands));
    return;
  }
  if (!state.runId || !runs.some((r) => r.run_id === state.runId)) state.runId = runs[0].run_id;
  const rows = runs.map((r) =>
    el("tr", { "data-run": r.run_id, style: r.run_id === state.runId ? "font-weight:600" : "", onclick: () => { state.runId = r.run_id; state.runFetchedAt = 0; refreshRun(); } },
      el("td", { class: "mono" }, r.run_id), el("td", {}, r.component), el("td", {}, badge(r.status)),
      el("td", {}, r.samples), el("td", {}, `${number(r.elapsed_s / 60, 1)} min`), el("td", {}, r.reason || "")));
  fill("evolution", table(["run", "component", "status", "samples", "time", "outcome"], rows), drawIslands(snap.islands));
  const current = runs.find((r) => r.run_id === state.runId);
  if (!state.run || state.run.run_id !== state.runId || (current.status === "running" && Date.now() - state.runFetchedAt > 5000) || state.run.status !== current.status) refreshRun();
}

// Collaborative evolution: this node's islands, what their migrants became here, the winner they agreed on.
function drawIslands(islands) {
  if (!islands || !islands.runs.length) return null;
  const rows = islands.runs.slice().reverse().map((r) =>
    el("tr", { "data-island": r.evolution },
      el("td", { class: "mono" }, short(r.evolution)), el("td", {}, r.component),
      el("td", {}, `${r.rank + 1} of ${r.islands.length}`), el("td", {}, badge(r.state, "")),
      el("td", { class: "sent" }, r.sent), el("td", { class: "admitted" }, r.admitted),
      el("td", { class: "dropped" }, r.dropped + r.misreport),
      el("td", { class: "liars mono" }, r.liars.map(short).join(", ") || "-"),
      el("td", { class: "winner mono" }, r.winner ? `${short(r.winner.source_hash)} from ${short(r.winner.author)}` : "-"),
      el("td", {}, r.proposed ? "proposed here" : "")));
  return [el("h3", {}, "Islands"),
    table(["evolution", "component", "island", "state", "sent", "admitted", "dropped", "misreported by", "winner", ""], rows)];
}

async function refreshRun() {
  state.runFetchedAt = Date.now();
  const response = await fetch(`/api/evolution/runs/${encodeURIComponent(state.runId)}`);
  if (!response.ok) return;
  state.run = await response.json();
  drawRun(state.run);
}

function drawRun(run) {
  const colors = { correct: "#1a7f37", incorrect: "#c62828", compile_failed: "#f79009" };
  const scored = run.candidates.filter((c) => c.score !== null).map((c) => [c.minutes, c.score, `#${c.id} ${c.operator} ${c.status}`]);
  const best = run.best_so_far.map((p) => [p.minutes, p.score]);
  const end = run.elapsed_s / 60;
  const counts = {};
  for (const c of run.candidates) counts[c.status] = (counts[c.status] || 0) + 1;
  const lines = run.baseline_score !== null ? [{ y: run.baseline_score, label: "baseline" }] : [];
  const diff = el("pre", { class: "diff" }, (run.diff || "(the best is the baseline)").split("\n").map((line) =>
    el("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, line + "\n")));
  const held = run.heldout;
  document.getElementById("run").replaceChildren(
    el("h3", {}, `Run ${run.run_id}: ${run.component} (${run.direction === "min" ? "lower" : "higher"} is better)`),
    el("div", { class: "muted" }, Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(" · ")),
    chart([{ points: scored, color: "#98a2b3", dots: true, cls: "candidate" }, { points: best, color: "#1f6feb", step: true, extendTo: end, cls: "best" }], lines,
      { width: 720, height: 260, xLabel: "minutes since the start", yLabel: "score" }),
    run.best ? el("div", {}, `best: candidate ${run.best.id} (${run.best.operator}), score ${number(run.best.score)}, training ${number(run.best.improvement_pct)} %`) : null,
    held ? el("div", { class: "heldout" }, `held out: ${number(held.improvement_pct)} % · module ${short(held.wasm_sha256)}`,
      table(["workload", "baseline", "candidate"], (held.workloads || []).map((w) =>
        el("tr", {}, el("td", {}, w.name), el("td", {}, number(w.baseline)), el("td", {}, number(w.candidate)))))) : null,
    el("h3", {}, "Best block against the baseline"), diff);
}

function drawUpgrades(snap) {
  const u = snap.upgrades;
  const rollouts = u.rollouts.map((r) => {
    const stages = r.stages.map((nodes, i) => {
      const reports = r.reports[String(i)] || {};
      const windowLeft = r.active_stage === i && r.window_started_at ? Math.max(0, r.window_s - (snap.node.now - r.window_started_at)) : null;
      return el("div", { class: `stage ${r.active_stage === i ? "active" : ""}`, "data-stage": i },
        el("div", {}, `stage ${i + 1}: ${nodes.length} node(s)`),
        nodes.map((n) => el("div", { class: "mono" }, `${short(n)} `, n in reports ? badge(reports[n].healthy === false ? "unhealthy" : "healthy", reports[n].healthy === false ? "bad" : "ok") : el("span", { class: "muted" }, "waiting"))),
        windowLeft !== null ? el("div", {}, `health window: ${Math.ceil(windowLeft)} s left`, el("div", { class: "bar" }, el("div", { style: `width:${100 * (1 - windowLeft / r.window_s)}%` }))) : null);
    });
    return el("div", { class: "card", "data-rollout": r.proposal_id },
      el("div", {}, `rollout of ${short(r.proposal_id)} `, el("span", { class: "rollout-state" }, badge(r.state))),
      r.rollback_reason ? el("div", { class: "muted" }, `rolled back: ${r.rollback_reason}`) : null,
      el("div", { class: "stages" }, stages));
  });
  const components = Object.entries(u.components).map(([name, c]) =>
    el("tr", { "data-component": name },
      el("td", {}, name), el("td", { class: "mono active-version" }, short(c.active)),
      el("td", {}, c.versions.length), el("td", {}, c.calls), el("td", {}, c.faults), el("td", {}, c.fallbacks),
      el("td", {}, c.versions.length > 1 ? el("button", { "data-rollback": name, onclick: () => rollback(name, c.active) }, "Roll back") : "")));
  const history = u.history.slice().reverse().map((h) =>
    el("tr", {}, el("td", {}, h.seq), el("td", {}, h.component), el("td", { class: "mono" }, short(h.version)), el("td", {}, badge(h.event, "")), el("td", {}, h.reason || ""), el("td", {}, when(h.at))));
  const outcomes = (snap.islands ? snap.islands.outcomes : []).slice().reverse().map((o) =>
    el("tr", { "data-outcome": o.proposal_id },
      el("td", { class: "mono" }, short(o.proposal_id)), el("td", {}, o.component), el("td", {}, badge(o.state)),
      el("td", { class: "claimed" }, `${number(o.claimed_pct, 2)} %`),
      el("td", { class: "live" }, o.live_effect_pct === null ? "-" : `${number(o.live_effect_pct, 2)} % on ${o.live.filter((e) => e.effect_pct !== null).length} node(s)`),
      el("td", {}, o.contradicted ? badge("contradicted", "bad") : badge("consistent", "ok")),
      el("td", { class: "mono" }, short(o.author))));
  fill("upgrades",
    rollouts.length ? rollouts : el("p", { class: "muted" }, "no rollouts"),
    el("h3", {}, "Claims and live effects"),
    outcomes.length ? table(["upgrade", "component", "state", "claimed (held out)", "live effect", "", "proposed by"], outcomes) : el("p", { class: "muted" }, "no upgrades yet"),
    el("h3", {}, "Components"), table(["component", "live version", "versions", "calls", "faults", "fallbacks", ""], components),
    el("h3", {}, "Version history"), history.length ? table(["#", "component", "version", "event", "reason", "at"], history) : el("p", { class: "muted" }, "none"));
}

// The same route as `synapse-ng upgrade rollback`: it needs the operator's token (DATA/operator.token).
async function rollback(component, version) {
  if (!window.confirm(`Roll ${component} back from version ${short(version)} on every node?`)) return;
  let token = sessionStorage.getItem("synapse-operator-token");
  if (!token) {
    token = window.prompt("The operator's token of this node (its DATA/operator.token):");
    if (!token) return;
  }
  const response = await fetch(`/api/upgrades/${encodeURIComponent(component)}/rollback`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token.trim()}` },
    body: JSON.stringify({ reason: "operator rollback from the dashboard" }),
  });
  if (response.ok) sessionStorage.setItem("synapse-operator-token", token.trim());
  else {
    if (response.status === 401) sessionStorage.removeItem("synapse-operator-token");
    const text = await response.text();
    window.alert(`The node refused the rollback (${response.status}): ${text}`);
  }
}

// --------------------------------------------------------------------------------------------- live

function draw(snap) {
  state.snapshot = snap;
  for (const part of [drawHeader, drawNetwork, drawHealth, drawGovernance, drawEvolution, drawUpgrades]) {
    try { part(snap); } catch (error) { console.error(part.name, error); }
  }
}

function follow() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/dashboard/events");
  events.addEventListener("snapshot", (event) => { draw(JSON.parse(event.data)); });
  events.onopen = () => { live.textContent = "live"; live.className = "badge live"; };
  events.onerror = () => { live.textContent = "reconnecting"; live.className = "badge off"; };
}

fetch("/api/dashboard").then((r) => r.json()).then(draw).finally(follow);
