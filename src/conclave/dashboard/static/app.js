// Conclave dashboard: plain ES module, no framework, no build step, nothing loaded from elsewhere.
//
// The page only talks to the node that served it (same origin):
//   /ui/api/cluster    every member's /v1/status, asked by the node (a dead member is "up": false)
//   /ui/api/decisions  open proposals with votes and tally, recent outcomes, conflicts
//   /ui/api/alerts     this node's /v1/alerts, or {"available": false}
//   /ui/api/series     per-second writes, latency percentiles and applied entries of a member
// and listens to /v1/decisions/watch (server-sent events) to refresh decisions at once.
// Every poll is chained (the next starts when the previous has finished) and has a timeout, so
// a slow node never piles up requests. All text is set with textContent (no HTML injection).

const CLUSTER_EVERY_MS = 1000;
const DECISIONS_EVERY_MS = 2000;
const ALERTS_EVERY_MS = 3000;
const SERIES_EVERY_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const WINDOW_SECONDS = 300;

const state = {
  self: null,
  leader: null,
};

// -- small helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function byId(id) {
  return document.getElementById(id);
}

function badge(text, kind) {
  return el("span", { class: `badge badge-${kind}`, text });
}

function fmt(value) {
  return value === null || value === undefined ? "–" : String(value);
}

// The node that served the page did not answer (down, restarting, too slow): shown in the
// header. Any other exception is a bug of this page and goes to the console.
class FetchError extends Error {}

async function getJson(url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, { signal: controller.signal, cache: "no-store" });
    if (!response.ok) throw new FetchError(`${url} answered ${response.status}`);
    return await response.json();
  } catch (error) {
    if (error instanceof FetchError) throw error;
    throw new FetchError(error.name === "AbortError" ? `no answer in ${FETCH_TIMEOUT_MS / 1000} s` : error.message);
  } finally {
    clearTimeout(timer);
  }
}

function report(error) {
  if (error instanceof FetchError) showConnection(false, error);
  else console.error("dashboard:", error);
}

function every(ms, task) {
  const run = async () => {
    try {
      await task();
    } catch (error) {
      report(error);
    }
    setTimeout(run, ms);
  };
  run();
}

function showConnection(ok, error) {
  const line = byId("connection");
  if (ok) {
    line.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    line.className = "connection ok";
  } else {
    const who = state.self === null ? "the node" : `node ${state.self}`;
    line.textContent = `cannot reach ${who} that serves this page (${error?.message ?? error}); retrying`;
    line.className = "connection bad";
  }
}

function replaceRows(tbody, rows, columns, emptyText) {
  if (rows.length === 0) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: columns, class: "empty", text: emptyText })));
  } else {
    tbody.replaceChildren(...rows);
  }
}

// -- members ---------------------------------------------------------------------------------

function findLeader(members) {
  let best = null;
  for (const member of members) {
    const status = member.up ? member.status : null;
    if (status && status.role === "leader" && (best === null || status.term > best.status.term)) {
      best = member;
    }
  }
  return best;
}

function renderCluster(data) {
  state.self = data.self;
  byId("cluster-id").textContent = data.cluster_id;
  byId("served-by").textContent = `node ${data.self}`;
  const members = data.members;
  const leader = findLeader(members);
  state.leader = leader ? leader.id : null;
  const leaderCell = byId("leader");
  leaderCell.textContent = leader ? `node ${leader.id}` : "none";
  leaderCell.className = leader ? "leader-known" : "leader-none";
  leaderCell.dataset.leader = leader ? String(leader.id) : "";
  const terms = members.filter((m) => m.up).map((m) => m.status.term);
  byId("term").textContent = terms.length ? String(Math.max(...terms)) : "–";
  const up = members.filter((m) => m.up).length;
  const upCell = byId("members-up");
  upCell.textContent = `${up} / ${members.length}`;
  upCell.className = up === members.length ? "all-up" : "some-down";

  const peers = leader ? leader.status.peers || {} : {};
  const rows = members.map((member) => {
    const status = member.up ? member.status : null;
    const role = status ? status.role : "down";
    let lag = null;
    if (leader && member.id === leader.id) lag = 0;
    else if (peers[String(member.id)]) lag = peers[String(member.id)].lag;
    const name = el("th", { scope: "row" }, `node ${member.id}`,
      member.id === data.self ? el("span", { class: "this-node", text: " (this page)" }) : null);
    const roleCell = el("td", {}, badge(role, role));
    if (!member.up && member.error) roleCell.append(el("span", { class: "why", text: member.error }));
    const lagCell = el("td", { class: `num${lag !== null && lag > 0 ? " lagging" : ""}`, text: fmt(lag) });
    return el("tr", { "data-testid": `member-${member.id}`, "data-role": role,
      "data-commit-index": status ? status.commit_index : null, class: member.up ? "" : "down" },
      name,
      roleCell,
      el("td", { class: "num", text: fmt(status?.term) }),
      el("td", { class: "num", text: fmt(status?.commit_index) }),
      el("td", { class: "num", text: fmt(status?.applied_index) }),
      lagCell,
      el("td", {}, el("code", { text: member.api_address })));
  });
  replaceRows(document.querySelector("#members tbody"), rows, 7, "no members");
}

// -- decisions -------------------------------------------------------------------------------

function tallyView(tally) {
  if (!tally) return el("p", { class: "empty", text: "tally unknown (kind not declared here)" });
  if (tally.error) return el("p", { class: "empty", text: `tally: ${tally.error}` });
  const total = Math.max(tally.total, 1);
  const pct = (weight) => `${(100 * weight) / total}%`;
  const bar = el("div", { class: "tally-bar", role: "img",
    "aria-label": `approve ${tally.approve}, reject ${tally.reject}, abstain ${tally.abstain}, undecided ${tally.undecided} of ${tally.total}` });
  for (const part of ["approve", "reject", "abstain", "undecided"]) {
    if (tally[part] > 0) bar.append(el("span", { class: `seg seg-${part}`, style: { width: pct(tally[part]) } }));
  }
  if (tally.approval_needed > 0 && tally.approval_needed <= tally.total) {
    bar.append(el("span", { class: "needed", style: { left: pct(tally.approval_needed) }, title: "approvals needed" }));
  }
  const text = el("p", { class: "tally-text", "data-testid": "tally" },
    el("strong", { text: `approve ${tally.approve} of ${tally.approval_needed} needed` }),
    ` · reject ${tally.reject} · abstain ${tally.abstain} · undecided ${tally.undecided} (total weight ${tally.total})`);
  const reason = el("p", { class: "tally-reason", text: tally.reason });
  return el("div", { class: "tally" }, bar, text, reason);
}

function deadlineText(deadlineMs) {
  const seconds = Math.round((deadlineMs - Date.now()) / 1000);
  if (seconds <= 0) return "deadline passed";
  if (seconds < 120) return `deadline in ${seconds} s`;
  return `deadline in ${Math.round(seconds / 60)} min`;
}

function decisionCard(item) {
  const changes = Object.entries(item.changes || {});
  const votes = item.vote_list || [];
  const voteRows = votes.map((vote) =>
    el("tr", { "data-testid": `vote-${item.id}-${vote.voter}` },
      el("th", { scope: "row", text: vote.voter }),
      el("td", {}, badge(vote.choice, vote.choice)),
      el("td", { class: "why", text: vote.justification || "" })));
  const votesTable = el("table", { class: "votes", "data-testid": `votes-${item.id}` },
    el("caption", { text: `Votes on ${item.id}` }),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "Voter" }),
      el("th", { scope: "col", text: "Vote" }),
      el("th", { scope: "col", text: "Justification" }))),
    el("tbody", {}, voteRows.length ? voteRows
      : el("tr", {}, el("td", { colspan: 3, class: "empty", text: "no votes yet" }))));
  return el("article", { class: "decision", "data-testid": `decision-${item.id}`, "aria-labelledby": `decision-${item.id}-title` },
    el("header", {},
      el("h3", { id: `decision-${item.id}-title` }, el("code", { text: item.id }), ` ${item.kind}`),
      el("p", { class: "meta" }, `proposed by ${item.proposer} · priority ${item.priority} · ${deadlineText(item.deadline_ms)}`,
        item.escalated ? badge("escalated", "warning") : null,
        item.rollback_of ? ` · rolls back ${item.rollback_of}` : null)),
    changes.length
      ? el("ul", { class: "changes", "aria-label": "changes" },
        changes.map(([key, value]) => el("li", {}, el("code", { text: key }), " → ",
          value === null ? el("em", { text: "delete" }) : el("code", { text: value }))))
      : null,
    tallyView(item.tally),
    votesTable);
}

function renderDecisions(data) {
  const open = data.open;
  byId("open-count").textContent = open.length ? `(${open.length})` : "";
  const box = byId("open-decisions");
  if (open.length === 0) box.replaceChildren(el("p", { class: "empty", text: "no open proposals" }));
  else box.replaceChildren(...open.map(decisionCard));

  const recent = data.recent.map((item) =>
    el("tr", { "data-testid": `outcome-${item.id}`, title: item.verdict || "" },
      el("th", { scope: "row" }, el("code", { text: item.id })),
      el("td", { text: item.kind }),
      el("td", { text: item.proposer }),
      el("td", {}, badge(item.status, item.status)),
      el("td", { class: "num", text: fmt(item.votes) })));
  replaceRows(document.querySelector("#recent tbody"), recent, 5, "no decided proposals yet");

  byId("conflicts-count").textContent = data.conflicts_total ? `(${data.conflicts_total})` : "";
  const conflicts = data.conflicts.map((c) => {
    const r = c.resolution;
    const resolution = r === null
      ? el("td", {}, badge("unresolved", "warning"))
      : el("td", {},
        el("div", {}, badge(r.strategy, "strategy"),
          ` winners ${r.winners.join(", ") || "none"} · losers ${r.losers.join(", ") || "none"}`,
          r.escalations.length ? ` · escalated ${r.escalations.join(", ")}` : "",
          r.merged ? " · merged" : ""),
        el("div", { class: "why", text: r.explanation }));
    return el("tr", { "data-testid": `conflict-${c.id}` },
      el("th", { scope: "row" }, el("code", { text: c.id })),
      el("td", { text: c.type }),
      el("td", {}, badge(c.severity, c.severity)),
      el("td", { text: c.proposals.join(", ") }),
      resolution);
  });
  replaceRows(document.querySelector("#conflicts tbody"), conflicts, 5, "no conflicts");
}

// -- alerts ----------------------------------------------------------------------------------

function alertLists(body) {
  // GET /v1/alerts answers {"active": [...], "resolved": [...]}; a bare list means all active.
  if (Array.isArray(body)) return { active: body, resolved: [] };
  if (body && Array.isArray(body.active)) {
    return { active: body.active, resolved: Array.isArray(body.resolved) ? body.resolved : [] };
  }
  return { active: [], resolved: [] };
}

function alertItem(alert, resolved) {
  const severity = resolved ? "resolved" : (alert.severity || "warning");
  const since = typeof alert.since === "number" ? new Date(alert.since * 1000).toLocaleTimeString() : null;
  const when = resolved && typeof alert.resolved_at === "number"
    ? `resolved ${new Date(alert.resolved_at * 1000).toLocaleTimeString()}`
    : since ? `since ${since}` : "";
  return el("li", { class: `alert alert-${severity}`, "data-testid": `alert-${alert.name ?? "alert"}` },
    badge(resolved ? "resolved" : severity, severity),
    el("strong", { text: ` ${alert.name ?? alert.alert ?? "alert"}` }),
    el("span", { class: "when", text: when ? ` · ${when}` : "" }),
    el("div", { class: "why", text: alert.message ?? alert.summary ?? "" }));
}

function renderAlerts(data) {
  const box = byId("alerts");
  if (!data.available) {
    box.replaceChildren(el("p", { class: "unavailable", "data-testid": "alerts-unavailable" },
      el("strong", { text: "alerts unavailable" }), el("span", { class: "why", text: ` (${data.reason})` })));
    return;
  }
  const { active, resolved } = alertLists(data.alerts);
  const parts = [];
  if (active.length === 0) parts.push(el("p", { class: "all-clear", text: "no alerts firing" }));
  else parts.push(el("ul", { class: "alerts", "aria-label": "firing alerts" }, active.map((a) => alertItem(a, false))));
  if (resolved.length) {
    parts.push(el("h3", { class: "minor", text: "Recently resolved" }),
      el("ul", { class: "alerts", "aria-label": "recently resolved alerts" },
        resolved.slice(0, 5).map((a) => alertItem(a, true))));
  }
  box.replaceChildren(...parts);
}

// -- charts ----------------------------------------------------------------------------------

const COLORS = { writes: "#93c5fd", applied: "#16a34a", p50: "#7c3aed", p99: "#dc2626", grid: "#e5e7eb", text: "#4b5563" };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function windowSeconds(points) {
  // The last 5 minutes, or less while the node is younger than that (at least one minute).
  if (points.length < 2) return 60;
  const span = (points[points.length - 1].t - points[0].t) / 1000;
  return Math.min(WINDOW_SECONDS, Math.max(60, Math.ceil(span / 30) * 30));
}

function tickLabel(secondsAgo) {
  if (secondsAgo === 0) return "now";
  return secondsAgo % 60 === 0 ? `-${secondsAgo / 60} min` : `-${secondsAgo} s`;
}

function drawChart(canvas, points, lines, unit) {
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = canvas.clientWidth || 560;
  const cssHeight = canvas.clientHeight || 200;
  if (canvas.width !== Math.round(cssWidth * ratio)) canvas.width = Math.round(cssWidth * ratio);
  if (canvas.height !== Math.round(cssHeight * ratio)) canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  const left = 52, right = 12, top = 10, bottom = 24;
  const width = cssWidth - left - right, height = cssHeight - top - bottom;
  const span = windowSeconds(points);
  const end = points.length ? points[points.length - 1].t : Date.now();
  const start = end - span * 1000;
  let max = 0;
  for (const point of points) for (const line of lines) {
    const value = point[line.key];
    if (point.t >= start && value !== null && value > max) max = value;
  }
  max = niceMax(max);
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.text;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i += 1) {
    const y = top + height - (height * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
    const label = (max * i) / 4;
    const number = Number.isInteger(label) ? String(label) : label.toFixed(label < 1 ? 2 : 1);
    ctx.fillText(i === 4 ? `${number} ${unit}` : number, left - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = [10, 15, 20, 30, 60, 120, 300].find((t) => (width * t) / span >= 52) ?? span;
  for (let ago = span - (span % step); ago >= 0; ago -= step) {
    const x = left + width - (width * ago) / span;
    ctx.fillText(tickLabel(ago), Math.min(Math.max(x, left + 16), left + width - 12), top + height + 6);
  }
  const xOf = (t) => left + (width * (t - start)) / (span * 1000);
  const yOf = (v) => top + height - (height * v) / max;
  const shown = points.filter((p) => p.t >= start);
  const barWidth = Math.max(1, (0.7 * width) / span);
  for (const line of lines.filter((l) => l.bars)) { // per-second counts: bars, drawn first
    ctx.fillStyle = COLORS[line.color];
    for (const point of shown) {
      const value = point[line.key];
      if (value) ctx.fillRect(xOf(point.t) - barWidth / 2, yOf(value), barWidth, top + height - yOf(value));
    }
  }
  for (const line of lines.filter((l) => !l.bars)) {
    const color = COLORS[line.color];
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    shown.forEach((point, i) => {
      const value = point[line.key];
      if (value === null) return;
      const previous = i > 0 ? shown[i - 1][line.key] : null;
      if (previous === null) ctx.moveTo(xOf(point.t), yOf(value));
      else ctx.lineTo(xOf(point.t), yOf(value));
    });
    ctx.stroke();
    shown.forEach((point, i) => { // a value with no neighbour would be invisible as a line
      const value = point[line.key];
      const before = i > 0 ? shown[i - 1][line.key] : null;
      const after = i + 1 < shown.length ? shown[i + 1][line.key] : null;
      if (value !== null && before === null && after === null) {
        ctx.beginPath();
        ctx.arc(xOf(point.t), yOf(value), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    });
  }
}

function lastMinute(points) {
  const end = points.length ? points[points.length - 1].t : 0;
  return points.filter((p) => p.t > end - 60000);
}

function renderSeries(data) {
  const throughput = byId("throughput-chart");
  const latency = byId("latency-chart");
  if (!data.available) {
    byId("throughput-summary").textContent = `no data: ${data.reason}`;
    byId("latency-summary").textContent = `no data: ${data.reason}`;
    drawChart(throughput, [], [], "/s");
    drawChart(latency, [], [], "ms");
    return;
  }
  const where = data.node === state.leader ? `at the leader's API (node ${data.node})` : `at node ${data.node}'s API`;
  const span = windowSeconds(data.points);
  const last = span >= 120 ? `last ${span / 60} minutes` : `last ${span} s`;
  byId("throughput-note").textContent = `${last}, measured ${where}`;
  byId("latency-note").textContent = `${last}, measured ${where} (commit and apply included)`;
  const points = data.points;
  drawChart(throughput, points, [{ key: "writes", color: "writes", bars: true }, { key: "applied_per_second", color: "applied" }], "/s");
  drawChart(latency, points, [{ key: "p50_ms", color: "p50" }, { key: "p99_ms", color: "p99" }], "ms");
  const minute = lastMinute(points);
  const writes = minute.reduce((sum, p) => sum + p.writes, 0);
  const applied = minute.reduce((sum, p) => sum + p.applied_per_second, 0);
  const seconds = Math.max(minute.length, 1);
  const throughputText = `last minute: ${writes} writes (${(writes / seconds).toFixed(1)}/s), ${(applied / seconds).toFixed(1)} entries applied/s`;
  byId("throughput-summary").textContent = throughputText;
  throughput.setAttribute("aria-label", `throughput chart; ${throughputText}`);
  const p99s = minute.map((p) => p.p99_ms).filter((v) => v !== null);
  const p50s = minute.map((p) => p.p50_ms).filter((v) => v !== null);
  const latencyText = p99s.length
    ? `last minute: worst p99 ${Math.max(...p99s).toFixed(1)} ms, median p50 ${p50s.sort((a, b) => a - b)[Math.floor(p50s.length / 2)].toFixed(1)} ms`
    : "last minute: no writes";
  byId("latency-summary").textContent = latencyText;
  latency.setAttribute("aria-label", `latency chart; ${latencyText}`);
}

// -- wiring ----------------------------------------------------------------------------------

async function refreshCluster() {
  const data = await getJson("/ui/api/cluster");
  renderCluster(data);
  showConnection(true);
}

async function refreshDecisions() {
  renderDecisions(await getJson("/ui/api/decisions"));
}

async function refreshAlerts() {
  renderAlerts(await getJson("/ui/api/alerts"));
}

async function refreshSeries() {
  const node = state.leader ?? state.self;
  const query = node === null ? "" : `?node=${node}`;
  renderSeries(await getJson(`/ui/api/series${query}`));
}

function watchDecisions() {
  if (typeof EventSource === "undefined") return;
  const source = new EventSource("/v1/decisions/watch");
  let pending = false;
  const nudge = () => {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      refreshDecisions().catch(report);
    }, 100);
  };
  // Server-sent events with an `event:` name only reach listeners of that name: every audit type.
  for (const type of ["kind_declared", "proposed", "voted", "approved", "rejected", "expired",
    "executed", "failed", "rolled_back", "conflict_detected", "resolved", "resolution_refused",
    "escalated", "waiting"]) {
    source.addEventListener(type, nudge);
  }
  source.onmessage = nudge;
}

function start() {
  every(CLUSTER_EVERY_MS, refreshCluster);
  every(DECISIONS_EVERY_MS, refreshDecisions);
  every(ALERTS_EVERY_MS, refreshAlerts);
  every(SERIES_EVERY_MS, refreshSeries);
  watchDecisions();
  window.addEventListener("resize", () => refreshSeries().catch(report));
}

start();
