// The operators' clearing page (docs/clearing-api.md): cycles and their states, net positions,
// revenue per day as a chart (uPlot, served from /static/vendor/uplot), line search, file
// downloads and reconciliation of the operator's own file. Every figure comes from the API,
// which decides what this token may see: the page never filters another operator's data out.

import { loadFleet } from "./operator-fleet.js";
import { formatVnd } from "./vnd.js";

const TOKEN_STORAGE_KEY = "tapledger.clearingToken";
const REQUEST_TIMEOUT_MS = 30000;
const CYCLES_SHOWN = 60;
const LINES_PAGE = 50;
// The chart shows the month up to the newest cycle.
const CHART_DAYS = 30;
const CHART_HEIGHT_PX = 260;
const CHART_WIDTH_MIN_PX = 320;
const MS_PER_DAY = 24 * 60 * 60 * 1000;
const MS_PER_S = 1000;
const UNAUTHORIZED = 401;
const ROLE_ADMIN = "admin";
const ROLE_OPERATOR = "operator";
const ALL_OPERATORS = "";
const PALETTE = ["#0b6e4f", "#1f5fbf", "#b3541e", "#7a3fb0", "#8a5a00", "#b3261e", "#2d7d9a"];
const OUTCOME_LABELS = {
  matched: "Matched",
  amount_mismatch: "Amounts differ",
  missing_in_ours: "Only in your file",
  missing_in_theirs: "Only in our lines",
};

const state = {
  token: null,
  me: null,
  cycles: [],
  day: null,
  operators: [],
  linesOffset: 0,
  linesTotal: 0,
  chart: null,
};

const $ = (id) => document.getElementById(id);

function setStatus(text, kind = "ok") {
  const status = $("status");
  status.textContent = text;
  status.dataset.state = kind;
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
  }
}

async function call(path, { method = "GET", body, contentType, accept } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (contentType) headers["Content-Type"] = contentType;
  if (accept) headers.Accept = accept;
  const response = await fetch(path, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // not problem+json: the status says enough
    }
    throw new ApiError(response.status, problem.code || "http_error", problem.detail);
  }
  return response;
}

async function getJson(path) {
  return (await call(path)).json();
}

function cyclePath(day, rest = "") {
  return `/v1/clearing/cycles/${day}${rest}`;
}

// ---------------------------------------------------------------- helpers

function cell(row, text, numeric = false) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.append(td);
  return td;
}

function vnd(amount) {
  return amount === null || amount === undefined ? "–" : formatVnd(amount);
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), MS_PER_S);
}

function dayText(isoDay, offsetDays) {
  const moment = new Date(`${isoDay}T00:00:00Z`).getTime() + offsetDays * MS_PER_DAY;
  return new Date(moment).toISOString().slice(0, 10);
}

function fillOperators(select, withAll) {
  select.replaceChildren();
  const scoped = state.me.operator_id;
  const choices = scoped ? [scoped] : [...state.operators];
  if (withAll && !scoped) choices.unshift(ALL_OPERATORS);
  for (const operator of choices) {
    const option = document.createElement("option");
    option.value = operator;
    option.textContent = operator || "every operator";
    select.append(option);
  }
  select.disabled = Boolean(scoped);
}

// ---------------------------------------------------------------- cycles and positions

async function loadCycles() {
  const page = await getJson(`/v1/clearing/cycles?limit=${CYCLES_SHOWN}`);
  state.cycles = page.items;
  const body = $("cycles");
  body.replaceChildren();
  $("cycles-empty").hidden = state.cycles.length > 0;
  for (const cycle of state.cycles) {
    const row = document.createElement("tr");
    row.dataset.day = cycle.business_day;
    row.tabIndex = 0;
    const revenue = cycle.operators.reduce((sum, o) => sum + o.revenue_vnd, 0);
    const net = cycle.operators.reduce((sum, o) => sum + o.net_vnd, 0);
    cell(row, cycle.business_day);
    cell(row, String(cycle.seq), true);
    cell(row, cycle.state).dataset.state = cycle.state;
    cell(row, vnd(revenue), true);
    cell(row, vnd(net), true);
    row.addEventListener("click", () => selectCycle(cycle.business_day));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") selectCycle(cycle.business_day);
    });
    body.append(row);
  }
}

async function selectCycle(day) {
  state.day = day;
  for (const row of $("cycles").children) {
    row.classList.toggle("selected", row.dataset.day === day);
  }
  const cycle = await getJson(cyclePath(day));
  showCycle(cycle);
  state.operators = cycle.operators.map((o) => o.operator_id);
  fillOperators($("lines-operator"), true);
  fillOperators($("reconcile-operator"), false);
  state.linesOffset = 0;
  await Promise.all([loadFiles(day), loadLines()]);
}

function showCycle(cycle) {
  $("cycle").hidden = false;
  $("cycle-title").textContent = `Cycle of ${cycle.business_day} (#${cycle.seq})`;
  $("cycle-state").textContent =
    cycle.state === "open" ? "open: not closed yet" : `${cycle.state}, cut off at ${cycle.cut_off}`;
  const positions = $("positions");
  positions.replaceChildren();
  for (const o of cycle.operators) {
    const row = document.createElement("tr");
    row.dataset.operator = o.operator_id;
    cell(row, o.operator_id);
    cell(row, String(o.lines), true);
    cell(row, vnd(o.revenue_vnd), true);
    cell(row, `${vnd(o.commission_vnd)} (${o.commission_bps / 100} %)`, true);
    cell(row, vnd(o.net_vnd), true);
    cell(row, vnd(o.paid_vnd), true);
    cell(row, vnd(-o.closing_vnd), true);
    positions.append(row);
  }
  const payouts = $("payouts");
  payouts.replaceChildren();
  for (const p of cycle.payouts) {
    const item = document.createElement("li");
    item.dataset.state = p.state;
    const detail = p.detail ? ` (${p.detail})` : "";
    item.textContent = `${p.operator_id}: ${vnd(p.amount_vnd)} to ${p.payee_name}, ${p.state}${detail}`;
    payouts.append(item);
  }
}

// ---------------------------------------------------------------- files

async function loadFiles(day) {
  const page = await getJson(cyclePath(day, "/files"));
  const list = $("files");
  list.replaceChildren();
  for (const file of page.items) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link file";
    button.dataset.name = file.name;
    button.textContent = file.name;
    // A link cannot carry the token, so the file is fetched and handed to the browser.
    button.addEventListener("click", () => download(file.href, `${day}-${file.name}`));
    item.append(button);
    list.append(item);
  }
}

async function download(href, name) {
  try {
    const response = await call(href);
    saveBlob(await response.blob(), name);
    setStatus(`Downloaded ${name}.`);
  } catch (error) {
    setStatus(`Could not download ${name}: ${error.message}`, "problem");
  }
}

// ---------------------------------------------------------------- lines

async function loadLines() {
  if (!state.day) return;
  const params = new URLSearchParams({ offset: state.linesOffset, limit: LINES_PAGE });
  const operator = $("lines-operator").value;
  if (operator) params.set("operator", operator);
  const text = $("lines-query").value.trim();
  if (text) params.set("q", text);
  const page = await getJson(cyclePath(state.day, `/lines?${params}`));
  state.linesTotal = page.total;
  const body = $("lines");
  body.replaceChildren();
  for (const line of page.items) {
    const row = document.createElement("tr");
    row.dataset.operator = line.operator_id;
    cell(row, String(line.line_no), true);
    cell(row, line.operator_id || `suspense: ${line.suspense_code}`);
    cell(row, line.category);
    cell(row, line.transaction_id).className = "id";
    cell(row, line.reference).className = "id";
    cell(row, vnd(line.amount_vnd), true);
    body.append(row);
  }
  const last = Math.min(state.linesOffset + page.items.length, page.total);
  $("lines-count").textContent = page.total
    ? `${state.linesOffset + 1}–${last} of ${page.total}`
    : "no line matches";
  $("lines-previous").disabled = state.linesOffset === 0;
  $("lines-next").disabled = last >= page.total;
}

async function searchLines(offset) {
  state.linesOffset = Math.max(0, offset);
  try {
    await loadLines();
  } catch (error) {
    setStatus(`Could not search the lines: ${error.message}`, "problem");
  }
}

// ---------------------------------------------------------------- revenue chart

async function loadRevenue() {
  const newest = state.cycles.find((c) => c.state !== "open") || state.cycles[0];
  if (!newest) {
    $("revenue-empty").hidden = false;
    return;
  }
  const to = newest.business_day;
  const from = dayText(to, 1 - CHART_DAYS);
  const page = await getJson(`/v1/clearing/revenue?from=${from}&to=${to}`);
  drawRevenue(page.items);
}

// One bar a day, stacked by operator: each operator's part sits on those before it. uPlot
// draws series in order, so the tallest stack (every operator) goes first and each shorter one
// is drawn over its lower part; the legend shows each operator's own figure.
function drawRevenue(rows) {
  const days = [...new Set(rows.map((r) => r.business_day))].sort();
  const operators = [...new Set(rows.map((r) => r.operator_id))].sort();
  const holder = $("revenue-chart");
  holder.dataset.points = String(rows.length);
  holder.dataset.operators = operators.join(",");
  $("revenue-empty").hidden = rows.length > 0;
  if (state.chart) state.chart.destroy();
  state.chart = null;
  if (!rows.length) return;
  const byKey = new Map(rows.map((r) => [`${r.business_day}|${r.operator_id}`, r.revenue_vnd]));
  const own = operators.map((op) => days.map((d) => byKey.get(`${d}|${op}`) ?? 0));
  const stacked = own.map((_, k) =>
    days.map((__, j) => own.slice(0, k + 1).reduce((sum, part) => sum + part[j], 0)),
  );
  const order = operators.map((_, k) => k).reverse();
  const xs = days.map((_, i) => i);
  const bars = uPlot.paths.bars({ size: [0.6, 80] });
  const series = [
    { label: "Day", value: (_, i) => (i === null || i === undefined ? "–" : days[i]) },
    ...order.map((k) => ({
      label: operators[k],
      stroke: PALETTE[k % PALETTE.length],
      fill: PALETTE[k % PALETTE.length],
      paths: bars,
      points: { show: false },
      value: (_, v, __, i) => (i === null || i === undefined ? "–" : vnd(own[k][i])),
    })),
  ];
  const width = Math.max(CHART_WIDTH_MIN_PX, holder.clientWidth || CHART_WIDTH_MIN_PX);
  const options = {
    width,
    height: CHART_HEIGHT_PX,
    series,
    scales: {
      x: { time: false, range: () => [-0.5, days.length - 0.5] },
      y: { range: (_, min, max) => [Math.min(0, min), Math.max(1, max) * 1.1] },
    },
    axes: [
      { splits: () => xs, values: (_, splits) => splits.map((i) => days[i] ?? "") },
      { values: (_, ticks) => ticks.map((t) => vnd(t)), size: 90 },
    ],
  };
  state.chart = new uPlot(options, [xs, ...order.map((k) => stacked[k])], holder);
  holder.dataset.drawn = "true";
}

// ---------------------------------------------------------------- reconciliation

async function reconcile(accept) {
  const file = $("reconcile-file").files[0];
  if (!file || !state.day) return null;
  const params = new URLSearchParams({ day: state.day });
  const operator = $("reconcile-operator").value;
  if (operator && !state.me.operator_id) params.set("operator", operator);
  return call(`/v1/clearing/reconciliations?${params}`, {
    method: "POST",
    body: file,
    contentType: "text/csv",
    accept,
  });
}

function showReport(report) {
  $("report").hidden = false;
  const summary = $("report-summary");
  summary.dataset.matched = String(report.all_matched);
  summary.textContent = report.all_matched
    ? `All ${report.totals.transactions} transactions match.`
    : `${report.totals.transactions} transactions; differences total ` +
      `${vnd(report.totals.difference_vnd)} (ours minus yours).`;
  const totals = $("report-totals");
  totals.replaceChildren();
  for (const [outcome, t] of Object.entries(report.by_outcome)) {
    const row = document.createElement("tr");
    row.dataset.outcome = outcome;
    cell(row, OUTCOME_LABELS[outcome] || outcome);
    cell(row, String(t.transactions), true);
    cell(row, vnd(t.our_vnd), true);
    cell(row, vnd(t.their_vnd), true);
    cell(row, vnd(t.difference_vnd), true);
    totals.append(row);
  }
  const rows = $("report-rows");
  rows.replaceChildren();
  for (const r of report.rows) {
    const row = document.createElement("tr");
    row.dataset.outcome = r.outcome;
    cell(row, r.transaction_id).className = "id";
    cell(row, OUTCOME_LABELS[r.outcome] || r.outcome);
    cell(row, vnd(r.our_vnd), true);
    cell(row, vnd(r.their_vnd), true);
    cell(row, vnd(r.difference_vnd), true);
    rows.append(row);
  }
}

async function onReconcile(event) {
  event.preventDefault();
  setStatus("Reconciling…", "busy");
  try {
    const response = await reconcile();
    if (response) {
      showReport(await response.json());
      setStatus("Reconciled.");
    }
  } catch (error) {
    setStatus(`Reconciliation refused: ${error.message}`, "problem");
  }
}

async function onReportCsv() {
  try {
    const response = await reconcile("text/csv");
    if (response) saveBlob(await response.blob(), `reconciliation-${state.day}.csv`);
  } catch (error) {
    setStatus(`Could not download the report: ${error.message}`, "problem");
  }
}

// ---------------------------------------------------------------- the token and start

function askForToken(message) {
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("token-form").hidden = false;
  setStatus(message, "busy");
}

function tokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    localStorage.setItem(TOKEN_STORAGE_KEY, token);
    // A token left in the address bar ends up in history, bookmarks and screenshots.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function canSeeClearing(me) {
  return me.role === ROLE_ADMIN || (me.role === ROLE_OPERATOR && Boolean(me.operator_id));
}

async function start() {
  tokenFromFragment();
  state.token = localStorage.getItem(TOKEN_STORAGE_KEY);
  if (!state.token) {
    askForToken("Paste your clearing token to see your cycles.");
    return;
  }
  $("token-form").hidden = true;
  setStatus("Loading…", "busy");
  try {
    state.me = await getJson("/v1/me");
    if (!canSeeClearing(state.me)) {
      localStorage.removeItem(TOKEN_STORAGE_KEY);
      askForToken("This token sees no clearing data: use an operator's clearing token.");
      return;
    }
    $("who").textContent = state.me.operator_id ? `clearing · ${state.me.operator_id}` : "clearing · scheme staff";
    $("board").hidden = false;
    $("sign-out").hidden = false;
    await loadCycles();
    await loadRevenue();
    if (state.cycles.length) await selectCycle(state.cycles[0].business_day);
    $("fleet-section").hidden = state.me.role !== ROLE_ADMIN;
    if (state.me.role === ROLE_ADMIN) await loadFleet(getJson, $("fleet"), $("fleet-summary"));
    setStatus("Up to date.");
  } catch (error) {
    if (error.status === UNAUTHORIZED) {
      localStorage.removeItem(TOKEN_STORAGE_KEY);
      askForToken("The server refused this token; paste a new one.");
      return;
    }
    setStatus(`Could not load: ${error.message}`, "problem");
  }
}

function wire() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_STORAGE_KEY, token);
    $("token-input").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_STORAGE_KEY);
    state.token = null;
    askForToken("Signed out.");
  });
  $("lines-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchLines(0);
  });
  $("lines-operator").addEventListener("change", () => searchLines(0));
  $("lines-previous").addEventListener("click", () => searchLines(state.linesOffset - LINES_PAGE));
  $("lines-next").addEventListener("click", () => searchLines(state.linesOffset + LINES_PAGE));
  $("reconcile-form").addEventListener("submit", onReconcile);
  $("report-csv").addEventListener("click", onReportCsv);
}

wire();
start();
