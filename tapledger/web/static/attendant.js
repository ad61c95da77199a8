// The parking attendant's handheld: starts and ends sessions at one lot (docs/parking-api.md),
// paid by a rider's scanned TL1 code, and keeps working when the network does not. Every action
// goes through the outbox (attendant-outbox.js) first, so a lost answer or a reload never loses
// an action, and its own id makes sure the server applies it once.

import { OutboxFull, enqueue, lastSeq, pending, queuedCount, remove, update } from "./attendant-outbox.js";
import { formatVnd } from "./vnd.js";

const TOKEN_STORAGE_KEY = "tapledger.attendantToken";
const LOT_STORAGE_KEY = "tapledger.attendantLot";
const DEVICE_STORAGE_KEY = "tapledger.attendantDevice";
// Lot ids are lower-case letters, digits and "-" (docs/parking-api.md); a device name goes into
// request ids and Idempotency-Keys (128 characters at most), so it keeps to the same letters.
const LOT_PATTERN = /^[a-z0-9-]{1,64}$/;
const DEVICE_PATTERN = /^[a-z0-9-]{1,32}$/;
const DEVICE_RANDOM_BYTES = 4;

const API = "/v1/parking";
const CODE_PREFIX = "TL1:";
const REQUEST_TIMEOUT_MS = 10000;
const REPLAY_EVERY_S = 5;
const SESSIONS_REFRESH_S = 15;
const RECENT_SHOWN = 5;
const MS_PER_S = 1000;
const MS_PER_MIN = 60 * MS_PER_S;
const UNAUTHORIZED = 401;
const FORBIDDEN = 403;
const SERVER_ERROR_MIN = 500;
// Answers that say "not now" rather than "no": the action stays queued and is sent again.
const RETRY_LATER_STATUSES = new Set([408, 425, 429]);
const RETRY_LATER_CODES = new Set(["request_in_progress"]);
// The one refusal the page makes itself: an End for a plate with no open session at the lot.
const NO_OPEN_SESSION = "no_open_session";
const ENFORCEMENT_UNPAID = "unpaid";
const OUTBOX_LOCK = "tapledger-attendant-outbox";
const WORKER_URL = "/attendant-sw.js";
const WORKER_SCOPE = "/attendant";

const CLASS_LABELS = { motorbike: "Motorbike", car: "Car", large: "Large" };

const $ = (id) => document.getElementById(id);

/** A refusal: the server (or, for an End, the page) answered the action with a stable code. */
class Refused extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.name = "Refused";
    this.status = status;
    this.code = code;
    this.detail = detail || "";
  }
}

/** No answer about the action: no network, a 5xx, or "retry later". It stays queued. */
class Unreachable extends Error {
  constructor(message) {
    super(message);
    this.name = "Unreachable";
  }
}

const state = {
  token: null,
  lot: null,
  device: null,
  online: navigator.onLine,
  draining: false,
  drainAgain: false,
};

// ---------------------------------------------------------------- small formatting

/** "10:00" in the handheld's own time zone: what the attendant's watch says. */
export function formatClock(isoText) {
  const at = new Date(isoText);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(at.getHours())}:${two(at.getMinutes())}`;
}

/** The instant `minutes` from `nowMs`, to the second, with an explicit UTC offset. */
export function paidUntil(nowMs, minutes) {
  const at = new Date(Math.floor(nowMs / MS_PER_S) * MS_PER_S + minutes * MS_PER_MIN);
  return at.toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

function describe(entry) {
  const verb = entry.kind === "start" ? "Start" : "End";
  return `${verb} ${entry.plate}`;
}

// ---------------------------------------------------------------- settings

function takeSettingsFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const given = {
    [TOKEN_STORAGE_KEY]: params.get("token"),
    [LOT_STORAGE_KEY]: params.get("lot"),
    [DEVICE_STORAGE_KEY]: params.get("device"),
  };
  for (const [key, value] of Object.entries(given)) {
    if (value) localStorage.setItem(key, value);
  }
  if (window.location.hash) {
    // A token left in the address bar ends up in history, bookmarks and screenshots.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function randomDevice() {
  const bytes = crypto.getRandomValues(new Uint8Array(DEVICE_RANDOM_BYTES));
  return `h${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Reads the settings; false (and the settings form shown) when one is missing or unusable. */
function loadSettings() {
  if (!localStorage.getItem(DEVICE_STORAGE_KEY)) {
    localStorage.setItem(DEVICE_STORAGE_KEY, randomDevice());
  }
  state.token = localStorage.getItem(TOKEN_STORAGE_KEY);
  state.lot = localStorage.getItem(LOT_STORAGE_KEY);
  state.device = localStorage.getItem(DEVICE_STORAGE_KEY);
  $("where").textContent = `lot ${state.lot || "–"} · handheld ${state.device}`;
  $("where").dataset.device = state.device;
  if (!state.token || !LOT_PATTERN.test(state.lot || "") || !DEVICE_PATTERN.test(state.device)) {
    showSettings("Enter the operator token, the lot and a name for this handheld.");
    return false;
  }
  $("settings-form").hidden = true;
  $("action-form").hidden = false;
  $("lot").hidden = false;
  return true;
}

function showSettings(message) {
  $("token-input").value = "";
  $("lot-input").value = state.lot || "";
  $("device-input").value = state.device || "";
  $("settings-form").hidden = false;
  $("action-form").hidden = true;
  showResult("refused", message, "");
}

function saveSettings(event) {
  event.preventDefault();
  const token = $("token-input").value.trim();
  const lot = $("lot-input").value.trim().toLowerCase();
  const device = $("device-input").value.trim().toLowerCase();
  if (!LOT_PATTERN.test(lot) || !DEVICE_PATTERN.test(device)) {
    showResult("refused", "Lot and device: lower-case letters, digits and “-” only.", "");
    return;
  }
  if (token) localStorage.setItem(TOKEN_STORAGE_KEY, token);
  localStorage.setItem(LOT_STORAGE_KEY, lot);
  localStorage.setItem(DEVICE_STORAGE_KEY, device);
  if (loadSettings()) {
    $("result").hidden = true;
    focusScanner();
    drain();
    refreshSessions();
  }
}

// ---------------------------------------------------------------- HTTP

async function api(path, { method = "GET", json, key } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    const why = error.name === "TimeoutError" ? "it did not answer in time" : "no network";
    throw new Unreachable(`Cannot reach the server: ${why}.`);
  }
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status alone tells what happened.
  }
  if (response.ok) return body;
  const code = body.code || "http_error";
  const later =
    response.status >= SERVER_ERROR_MIN ||
    RETRY_LATER_STATUSES.has(response.status) ||
    RETRY_LATER_CODES.has(code);
  if (later) {
    throw new Unreachable(`The server could not answer now (HTTP ${response.status}, ${code}).`);
  }
  throw new Refused(response.status, code, body.detail);
}

function isAuthRefusal(error) {
  return error instanceof Refused && (error.status === UNAUTHORIZED || error.status === FORBIDDEN);
}

// ---------------------------------------------------------------- sending one action

async function sendStart(entry) {
  const session = await api(`${API}/sessions`, {
    method: "POST",
    key: entry.id,
    json: {
      start_id: entry.id,
      lot_id: entry.lot,
      plate: entry.plate,
      vehicle_class: entry.vehicle_class,
      paid_until: entry.paid_until,
      quote_id: null,
      account_id: null,
      code: entry.code,
      // Made while offline, the start counts from when it was made, not when it arrives.
      started_at: entry.queued_at,
    },
  });
  const plate = session.plate_display || session.plate;
  const held = Number.isInteger(session.held_vnd) ? ` · held ${formatVnd(session.held_vnd)}` : "";
  return {
    title: `Started ${plate}, paid until ${formatClock(session.paid_until)}`,
    detail: `${CLASS_LABELS[session.vehicle_class] || session.vehicle_class}${held}`,
  };
}

/** The open session of the End's plate; found once and kept, so a resend ends the same one. */
async function sessionToEnd(entry) {
  if (entry.session_id) return entry.session_id;
  const query = new URLSearchParams({ lot_id: entry.lot, plate: entry.plate });
  const found = await api(`${API}/enforcement?${query}`);
  if (found.status === ENFORCEMENT_UNPAID || !found.session_id) {
    throw new Refused(0, NO_OPEN_SESSION, `No open session of ${entry.plate} at ${entry.lot}.`);
  }
  entry.session_id = found.session_id;
  await update(entry);
  return entry.session_id;
}

async function sendEnd(entry) {
  const sessionId = await sessionToEnd(entry);
  const ended = await api(`${API}/sessions/${encodeURIComponent(sessionId)}/end`, {
    method: "POST",
    key: entry.id,
    json: { end_id: entry.id, ended_at: entry.queued_at },
  });
  const session = ended.session || {};
  const plate = session.plate_display || session.plate || entry.plate;
  let detail = Number.isInteger(session.fee_vnd) ? `Fee ${formatVnd(session.fee_vnd)}` : "";
  if (session.unpaid_vnd > 0) detail += `, of which ${formatVnd(session.unpaid_vnd)} unpaid`;
  return { title: `Ended ${plate}`, detail };
}

function send(entry) {
  return entry.kind === "start" ? sendStart(entry) : sendEnd(entry);
}

// ---------------------------------------------------------------- the outbox, replayed

function withOutboxLock(work) {
  // Two tabs of one handheld would send the same entries; the ids make that harmless, the lock
  // makes it quiet. A tab that finds the lock taken leaves the work to the other.
  if (!navigator.locks) return work();
  return navigator.locks.request(OUTBOX_LOCK, { ifAvailable: true }, (lock) => (lock ? work() : null));
}

/** Sends the queued actions in sequence order; stops at the first that gets no answer. */
async function drain() {
  if (!state.token) return;
  if (state.draining) {
    state.drainAgain = true;
    return;
  }
  state.draining = true;
  let answered = 0;
  try {
    await withOutboxLock(async () => {
      do {
        state.drainAgain = false;
        for (const entry of await pending()) {
          const outcome = await attempt(entry);
          if (!outcome) return;
          await remove(entry.seq);
          answered += 1;
          showOutcome(entry, outcome);
        }
      } while (state.drainAgain);
    });
  } finally {
    state.draining = false;
    await showQueue();
  }
  if (answered > 0) refreshSessions();
}

/** One send; its outcome, or null when the action must stay queued. */
async function attempt(entry) {
  try {
    const done = await send(entry);
    state.online = true;
    return { ok: true, ...done };
  } catch (error) {
    if (error instanceof Unreachable) {
      state.online = false;
      showStillQueued(error);
      return null;
    }
    if (isAuthRefusal(error)) {
      // The token, not the action, was refused: the action waits for a token that works.
      showSettings(`The server refused this handheld's token (${error.code}); enter a new one.`);
      return null;
    }
    if (error instanceof Refused) {
      state.online = true;
      return { ok: false, code: error.code, title: error.code, detail: error.detail };
    }
    throw error;
  }
}

// ---------------------------------------------------------------- what the attendant sees

function showResult(outcome, title, detail, code = "") {
  const panel = $("result");
  panel.dataset.outcome = outcome;
  panel.dataset.code = code;
  $("result-title").textContent = title;
  $("result-detail").textContent = detail;
  panel.hidden = false;
}

function showOutcome(entry, outcome) {
  if (outcome.ok) {
    showResult("ok", outcome.title, outcome.detail);
  } else {
    showResult("refused", outcome.title, `${describe(entry)}: ${outcome.detail}`, outcome.code);
  }
  const item = document.createElement("li");
  item.dataset.outcome = outcome.ok ? "ok" : "refused";
  item.dataset.id = entry.id;
  item.textContent = outcome.ok ? outcome.title : `${describe(entry)} — ${outcome.code}`;
  const recent = $("recent");
  recent.prepend(item);
  while (recent.children.length > RECENT_SHOWN) recent.lastElementChild.remove();
  $("recent-card").hidden = false;
}

function showStillQueued(error) {
  const panel = $("result");
  if (panel.dataset.outcome !== "pending") return;
  const detail = `${error.message} It is sent when the network is back.`;
  showResult("queued", `Queued: ${panel.dataset.action}`, detail);
}

async function showQueue() {
  const queued = await queuedCount();
  const line = $("queue");
  line.dataset.queued = String(queued);
  line.dataset.online = String(state.online);
  line.dataset.lastSeq = String(await lastSeq());
  if (!state.online) {
    line.textContent = `offline — ${queued} queued`;
  } else if (queued > 0) {
    line.textContent = `online — ${queued} sending`;
  } else {
    line.textContent = "online — nothing queued";
  }
}

function sessionItem(session, nowMs) {
  const item = document.createElement("li");
  const expired = Date.parse(session.paid_until) <= nowMs;
  item.dataset.sessionId = session.session_id;
  item.dataset.plate = session.plate;
  item.classList.toggle("expired", expired);
  const plate = document.createElement("span");
  plate.className = "plate";
  plate.textContent = session.plate_display || session.plate;
  const kind = document.createElement("span");
  kind.className = "class";
  kind.textContent = CLASS_LABELS[session.vehicle_class] || session.vehicle_class;
  const until = document.createElement("span");
  until.className = "until";
  until.textContent = expired
    ? `expired ${formatClock(session.paid_until)}`
    : `until ${formatClock(session.paid_until)}`;
  item.append(plate, kind, until);
  return item;
}

async function refreshSessions() {
  if (!state.token || !state.lot) return;
  const query = new URLSearchParams({ lot_id: state.lot, state: "open" });
  let answer;
  try {
    answer = await api(`${API}/sessions?${query}`);
  } catch (error) {
    if (isAuthRefusal(error)) {
      showSettings(`The server refused this handheld's token (${error.code}); enter a new one.`);
    } else {
      $("sessions-when").textContent = `Not updated: ${error.message}`;
    }
    return;
  }
  // The contract says "a lot's sessions" without the envelope; other lists are {"items": [...]}.
  const sessions = Array.isArray(answer) ? answer : answer.items || [];
  const nowMs = Date.now();
  $("sessions").replaceChildren(...sessions.map((session) => sessionItem(session, nowMs)));
  $("sessions-count").textContent = `(${sessions.length})`;
  $("sessions-empty").hidden = sessions.length > 0;
  $("sessions-when").textContent = `Updated ${formatClock(new Date(nowMs).toISOString())}`;
}

// ---------------------------------------------------------------- actions

function focusScanner() {
  $("scan-input").focus();
}

function scannedCode() {
  const text = $("scan-input").value.trim();
  return text.startsWith(CODE_PREFIX) ? text : null;
}

function readPlate() {
  return $("plate-input").value.trim().toUpperCase();
}

/** Clears the fields at once, before anything is awaited: a scanner may be typing the next
 * vehicle's code while this action is being written. */
function takeFields() {
  $("scan-input").value = "";
  $("plate-input").value = "";
  focusScanner();
}

async function act(action) {
  let entry;
  try {
    entry = await enqueue(state.device, { ...action, lot: state.lot });
  } catch (error) {
    const code = error instanceof OutboxFull ? "outbox_full" : "storage_unavailable";
    showResult("refused", code, `${describe(action)} was not recorded: ${error.message}`, code);
    return;
  }
  showResult("pending", `Sending: ${describe(entry)}…`, "");
  $("result").dataset.action = describe(entry);
  await showQueue();
  await drain();
}

function start() {
  const plate = readPlate();
  const code = scannedCode();
  if (!plate) {
    showResult("refused", "plate_missing", "Type the vehicle's plate.", "plate_missing");
    $("plate-input").focus();
    return;
  }
  if (!code) {
    showResult("refused", "code_missing", "Scan the rider's TL1 code first.", "code_missing");
    focusScanner();
    return;
  }
  const minutes = Number($("action-form").elements.paid_for_min.value);
  takeFields();
  act({
    kind: "start",
    plate,
    vehicle_class: $("class-input").value,
    paid_until: paidUntil(Date.now(), minutes),
    code,
  });
}

function end() {
  const plate = readPlate();
  if (!plate) {
    showResult("refused", "plate_missing", "Type the plate of the vehicle leaving.", "plate_missing");
    $("plate-input").focus();
    return;
  }
  // Queued by plate: offline, the session id cannot be looked up, so the replay finds it.
  takeFields();
  act({ kind: "end", plate });
}

/** A scanner types the code's text and then Enter: start at once if the plate is there. */
function onScannerKey(event) {
  if (event.key !== "Enter") return;
  event.preventDefault();
  const text = $("scan-input").value.trim();
  if (!text) return;
  if (!text.startsWith(CODE_PREFIX)) {
    $("scan-input").value = "";
    showResult("refused", "code_not_tl1", "That scan is not a TL1 code.", "code_not_tl1");
    return;
  }
  if (readPlate()) {
    start();
  } else {
    showResult("pending", "Code scanned", "Type the plate, then Enter.");
    $("plate-input").focus();
  }
}

/** A code scanned while the plate field had the focus is moved where it belongs. */
function onPlateInput() {
  const typed = $("plate-input").value;
  if (typed.trim().startsWith(CODE_PREFIX)) {
    $("scan-input").value = typed.trim();
    $("plate-input").value = "";
  }
}

// ---------------------------------------------------------------- start

/** Keeps the page for offline reloads (attendant-sw.js); the page works without it. */
function keepPageOffline() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker
    .register(WORKER_URL, { scope: WORKER_SCOPE })
    .then(() => navigator.serviceWorker.ready)
    .then(() => {
      document.body.dataset.offlineReady = "true";
    })
    .catch(() => {
      document.body.dataset.offlineReady = "false";
    });
}

async function main() {
  keepPageOffline();
  window.addEventListener("unhandledrejection", (event) => {
    showResult("refused", "page_error", String(event.reason), "page_error");
  });
  $("settings-form").addEventListener("submit", saveSettings);
  $("show-settings").addEventListener("click", () => showSettings("Change this handheld's settings."));
  $("action-form").addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  $("end").addEventListener("click", end);
  $("scan-input").addEventListener("keydown", onScannerKey);
  $("plate-input").addEventListener("input", onPlateInput);
  window.addEventListener("online", () => {
    state.online = true;
    drain();
  });
  window.addEventListener("offline", () => {
    state.online = false;
    showQueue();
  });
  setInterval(drain, REPLAY_EVERY_S * MS_PER_S);
  setInterval(refreshSessions, SESSIONS_REFRESH_S * MS_PER_S);

  takeSettingsFromFragment();
  if (!loadSettings()) {
    await showQueue();
    return;
  }
  focusScanner();
  await showQueue();
  await drain();
  await refreshSessions();
}

main().catch((error) => showResult("refused", "page_error", String(error)));
