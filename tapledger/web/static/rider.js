// The rider's page: holds a P-256 device key that never leaves this browser, gets it certified
// once (spec/QR.md, "Keys"), and signs a fresh TL1 code every 30 seconds.

import { formatVnd } from "./vnd.js";

// Re-exported so the page's tests reach it where they always have.
export { formatVnd };

// Where things are kept. localStorage holds what the server gave us; the key pair goes to
// IndexedDB because only structured clone (not JSON) can store a non-extractable CryptoKey.
const TOKEN_STORAGE_KEY = "tapledger.riderToken";
const CARD_STORAGE_KEY = "tapledger.virtualCard";
const COUNTER_STORAGE_KEY = "tapledger.codeCounter";
const DB_NAME = "tapledger";
const DB_VERSION = 1;
const DB_STORE = "device";
const DEVICE_KEY_RECORD = "deviceKeyPair";

// The TL1 layout (spec/QR.md, "Layout").
const TEXT_PREFIX = "TL1:";
const FORMAT_VERSION = 1;
const CERTIFICATE_BYTES = 126;
const GENERATED_AT_OFFSET = 126;
const COUNTER_OFFSET = 130;
const SIGNED_BYTES = 132;
const DEVICE_SIGNATURE_BYTES = 64;
const CODE_BYTES = SIGNED_BYTES + DEVICE_SIGNATURE_BYTES;
const COUNTER_MODULO = 0x10000; // the counter is a u16 and wraps after 65535
const BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const BASE45_BASE = 45;

// Timing. Validators refuse a code older than 60 s, so one every 30 s leaves a full half-window
// for the rider to reach the reader; a shown code is withdrawn a little before it goes stale.
const CODE_INTERVAL_S = 30;
const CODE_STALE_S = 60;
const CODE_WITHDRAW_MARGIN_S = 5;
const RETRY_AFTER_S = 5;
// A certificate lives at most 72 h; renewing 12 h ahead covers a phone that stays offline
// for half a day after the page was last opened.
const RENEW_BEFORE_S = 12 * 60 * 60;
const REQUEST_TIMEOUT_MS = 10000;
const TICK_MS = 1000;
const MS_PER_S = 1000;

// Parking. A session whose paid time ends within the reminder window is highlighted with a
// one-tap extension: 15 minutes is time enough to tap before an officer's round finds it unpaid.
const PARKING_REMINDER_MINUTES = 15;
const PARKING_REFRESH_S = 30;
const PARKING_EXTENSION_S = 60 * 60;
// A rider parks a car or a motorbike or two at once; a longer list is not for a phone.
const PARKING_SESSIONS_SHOWN = 20;
const S_PER_MINUTE = 60;
const MINUTES_PER_HOUR = 60;

const STATEMENT_LINES_SHOWN = 10;
const FINGERPRINT_BYTES_SHOWN = 4;
const CARD_ID_CHARS_SHOWN = 8;
const UNAUTHORIZED = 401;
const NOT_FOUND = 404;

// What the rider reads for each statement line kind (ticketing/adapters/ledger_follower.py);
// an unknown kind is shown as it is rather than hidden.
const KIND_LABELS = {
  opened: "Account opened",
  top_up: "Top-up",
  debit: "Fare",
  hold_placed: "Fare held at entry",
  hold_posted: "Fare charged",
  hold_voided: "Hold released",
  hold_expired: "Hold expired",
  blocked: "Account blocked",
  unblocked: "Account unblocked",
  closed: "Account closed",
};

const CARD_ACTIVE = "active";
const CARD_BLOCKED = "blocked";
const ROLE_RIDER = "rider";

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" };
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" };

const $ = (id) => document.getElementById(id);

/** A refusal from the API, carrying the problem+json `code` the API promises not to change. */
class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail ? `${detail} (${code})` : `HTTP ${status} (${code})`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** A state in which no code may be shown until the rider acts; the cycle stops retrying. */
class CardUnusable extends Error {
  constructor(message) {
    super(message);
    this.name = "CardUnusable";
  }
}

const state = {
  token: null,
  accountId: null,
  keyPair: null,
  publicKeyB64: null,
  card: null,
  shownCode: null, // {generatedAt, counter}
  nextCodeAtMs: 0,
  cycleTimer: null,
  cycleRunning: false,
  // After the first cycle a retired card is not replaced automatically: two phones sharing one
  // token would otherwise retire each other's card every 30 seconds.
  started: false,
  parking: {
    timer: null,
    refreshing: false,
    refreshAgain: false,
    sessions: [], // the open sessions last listed, the soonest paid end first
    // The list comes from a read model that may trail an extension by a moment; the extension's
    // own answer is shown until the list catches up with it.
    fresher: new Map(),
    outcomes: new Map(), // session id -> what the last tap on "Extend" came to
    extending: new Set(),
    lotNames: new Map(),
  },
};

// ---------------------------------------------------------------- status line

function setStatus(message, kind) {
  const line = $("status");
  line.textContent = message;
  line.dataset.state = kind;
}

function showError(error) {
  const message = error instanceof Error ? error.message : String(error);
  setStatus(message, "error");
}

// ---------------------------------------------------------------- Base45 (RFC 9285)

/** Two bytes become three characters, least significant digit first; a last lone byte two. */
export function base45Encode(bytes) {
  let text = "";
  const whole = bytes.length - (bytes.length % 2);
  for (let i = 0; i < whole; i += 2) {
    let value = (bytes[i] << 8) | bytes[i + 1];
    for (let digit = 0; digit < 3; digit += 1) {
      text += BASE45_ALPHABET[value % BASE45_BASE];
      value = Math.floor(value / BASE45_BASE);
    }
  }
  if (whole < bytes.length) {
    const value = bytes[whole];
    text += BASE45_ALPHABET[value % BASE45_BASE] + BASE45_ALPHABET[Math.floor(value / BASE45_BASE)];
  }
  return text;
}

// ---------------------------------------------------------------- bytes and text

function bytesToBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function base64ToBytes(text) {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function formatDelta(amount) {
  return amount > 0 ? `+${formatVnd(amount)}` : formatVnd(amount);
}

function formatWhen(isoText) {
  const at = new Date(isoText);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(at.getDate())}/${two(at.getMonth() + 1)} ${two(at.getHours())}:${two(at.getMinutes())}`;
}

// ---------------------------------------------------------------- HTTP

async function api(path, { method = "GET", json, expect = "json" } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (json !== undefined) headers["Content-Type"] = "application/json";
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
    throw new Error(`Cannot reach the server (${error.name}); retrying.`);
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // Not problem+json (a proxy's error page, say): the status alone is reported.
    }
    throw new ApiError(response.status, problem.code || "http_error", problem.detail || "");
  }
  return expect === "text" ? response.text() : response.json();
}

// ---------------------------------------------------------------- the token

function takeTokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    localStorage.setItem(TOKEN_STORAGE_KEY, token);
    // A token left in the address bar ends up in history, bookmarks and screenshots.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function askForToken(message, kind = "error") {
  stopCycle();
  stopParking();
  $("ticket").hidden = true;
  $("account").hidden = true;
  $("sign-out").hidden = true;
  $("token-form").hidden = false;
  setStatus(message, kind);
}

// ---------------------------------------------------------------- the device key

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => request.result.createObjectStore(DB_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`This browser's storage is unavailable: ${request.error}`));
  });
}

function dbRequest(db, mode, operate) {
  return new Promise((resolve, reject) => {
    const request = operate(db.transaction(DB_STORE, mode).objectStore(DB_STORE));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** This browser's key pair, made once; its private key cannot be exported, not even by us. */
async function deviceKeyPair() {
  const db = await openDb();
  try {
    const stored = await dbRequest(db, "readonly", (store) => store.get(DEVICE_KEY_RECORD));
    if (stored) return stored;
    const made = await crypto.subtle.generateKey(ECDSA_P256, false, ["sign", "verify"]);
    const pair = { privateKey: made.privateKey, publicKey: made.publicKey };
    try {
      // `add`, not `put`: if another tab stored a key meanwhile, both tabs must use that one.
      await dbRequest(db, "readwrite", (store) => store.add(pair, DEVICE_KEY_RECORD));
      return pair;
    } catch (error) {
      if (error && error.name === "ConstraintError") {
        return dbRequest(db, "readonly", (store) => store.get(DEVICE_KEY_RECORD));
      }
      throw error;
    }
  } finally {
    db.close();
  }
}

async function showDevice() {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", state.keyPair.publicKey));
  state.publicKeyB64 = bytesToBase64(raw);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  const extractable = state.keyPair.privateKey.extractable;
  const line = $("device");
  line.dataset.extractable = String(extractable);
  line.dataset.fingerprint = hex(digest.subarray(0, FINGERPRINT_BYTES_SHOWN));
  const privacy = extractable
    ? "private key EXTRACTABLE — re-create this device"
    : "private key non-extractable, never leaves this browser";
  line.textContent = `Device key P-256 ${line.dataset.fingerprint} · ${privacy}`;
  line.classList.toggle("warn", extractable);
}

// ---------------------------------------------------------------- the virtual card

function readStoredCard() {
  try {
    return JSON.parse(localStorage.getItem(CARD_STORAGE_KEY) || "null");
  } catch {
    return null; // a damaged record is replaced by a fresh registration
  }
}

function keepCard(body) {
  const card = {
    card_id: body.card_id,
    account_id: body.account_id,
    device_key: state.publicKeyB64,
    certificate: body.certificate,
    not_after: body.not_after,
    // The phone's clock may be minutes off; codes are dated on the server's clock instead.
    offset_s: body.server_time - Date.now() / MS_PER_S,
  };
  localStorage.setItem(CARD_STORAGE_KEY, JSON.stringify(card));
  state.card = card;
  const line = $("device");
  line.dataset.cardId = card.card_id;
  line.title = `virtual card ${card.card_id}`;
}

async function registerCard() {
  setStatus("Registering this phone…", "busy");
  const body = await api(`/v1/accounts/${state.accountId}/virtual-cards`, {
    method: "POST",
    json: { device_key: state.publicKeyB64 },
  });
  keepCard(body);
}

function serverNow() {
  return Date.now() / MS_PER_S + (state.card ? state.card.offset_s : 0);
}

/** Makes sure a certified, active card for this device key is at hand; see `state.started`. */
async function ensureCard() {
  const stored = readStoredCard();
  const ours =
    stored && stored.account_id === state.accountId && stored.device_key === state.publicKeyB64;
  if (!ours) {
    await registerCard();
    return;
  }
  let current;
  try {
    current = await api(`/v1/virtual-cards/${stored.card_id}`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === NOT_FOUND)) throw error;
    await registerCard();
    return;
  }
  if (current.status === CARD_BLOCKED) {
    // A block is how a lost phone is stopped; registering again here would undo it.
    throw new CardUnusable("This card is blocked. Ask the help desk to issue a new one.");
  }
  if (current.status !== CARD_ACTIVE) {
    if (state.started) {
      throw new CardUnusable("This card is now used on another phone. Reload to use it here.");
    }
    await registerCard();
    return;
  }
  keepCard(current);
  if (current.not_after - serverNow() < RENEW_BEFORE_S) {
    setStatus("Renewing this phone's certificate…", "busy");
    keepCard(await api(`/v1/virtual-cards/${stored.card_id}/renew`, { method: "POST" }));
  }
}

// ---------------------------------------------------------------- codes

function nextCounter() {
  const stored = Number.parseInt(localStorage.getItem(COUNTER_STORAGE_KEY) || "0", 10);
  const counter = Number.isInteger(stored) && stored >= 0 ? stored % COUNTER_MODULO : 0;
  // Saved before use: a crash after showing the code must not let the next one reuse it.
  localStorage.setItem(COUNTER_STORAGE_KEY, String((counter + 1) % COUNTER_MODULO));
  return counter;
}

/** The 196 bytes of spec/QR.md: certificate ‖ generated_at ‖ counter ‖ ECDSA r‖s. */
async function makeCode() {
  const certificate = base64ToBytes(state.card.certificate);
  if (certificate.length !== CERTIFICATE_BYTES || certificate[0] !== FORMAT_VERSION) {
    throw new Error(`The server sent a certificate this page cannot use (${certificate.length} bytes).`);
  }
  const generatedAt = Math.floor(serverNow());
  const counter = nextCounter();
  const signed = new Uint8Array(SIGNED_BYTES);
  signed.set(certificate, 0);
  const view = new DataView(signed.buffer);
  view.setUint32(GENERATED_AT_OFFSET, generatedAt, false);
  view.setUint16(COUNTER_OFFSET, counter, false);
  // WebCrypto's ECDSA signature is already raw r ‖ s (IEEE P1363), the layout's own encoding.
  const signature = new Uint8Array(
    await crypto.subtle.sign(ECDSA_SHA256, state.keyPair.privateKey, signed),
  );
  if (signature.length !== DEVICE_SIGNATURE_BYTES) {
    throw new Error(`This browser made a ${signature.length}-byte signature, not 64.`);
  }
  const code = new Uint8Array(CODE_BYTES);
  code.set(signed, 0);
  code.set(signature, SIGNED_BYTES);
  return { text: TEXT_PREFIX + base45Encode(code), generatedAt, counter };
}

async function showCode(code) {
  const svgText = await api("/v1/qr.svg", { method: "POST", json: { text: code.text }, expect: "text" });
  const parsed = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = parsed.documentElement;
  if (svg.localName !== "svg" || parsed.getElementsByTagName("parsererror").length > 0) {
    throw new Error("The server's QR image could not be read.");
  }
  // The drawing has a fixed pixel size and no viewBox; a viewBox lets CSS scale it to the screen.
  const width = svg.getAttribute("width");
  const height = svg.getAttribute("height");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  const qr = $("qr");
  qr.replaceChildren(document.importNode(svg, true));
  qr.dataset.code = code.text;
  qr.dataset.counter = String(code.counter);
  qr.dataset.generatedAt = String(code.generatedAt);
  qr.classList.remove("withdrawn");
  state.shownCode = code;
  $("ticket").hidden = false;
}

function withdrawStaleCode() {
  const code = state.shownCode;
  if (!code || serverNow() - code.generatedAt < CODE_STALE_S - CODE_WITHDRAW_MARGIN_S) return;
  // A validator would refuse it as `code_stale`; showing it would only mislead the rider.
  const qr = $("qr");
  qr.replaceChildren();
  delete qr.dataset.code;
  qr.classList.add("withdrawn");
  state.shownCode = null;
}

// ---------------------------------------------------------------- balance and activity

/** The amount a statement line shows: money that moved, else money held or let go. */
function lineAmount(line) {
  if (line.posted_delta_vnd !== 0) {
    const kind = line.posted_delta_vnd < 0 ? "debit" : "credit";
    return { text: formatDelta(line.posted_delta_vnd), kind };
  }
  if (line.pending_delta_vnd > 0) return { text: `${formatVnd(line.pending_delta_vnd)} held`, kind: "held" };
  if (line.pending_delta_vnd < 0) {
    return { text: `${formatVnd(-line.pending_delta_vnd)} released`, kind: "held" };
  }
  return { text: "", kind: "none" };
}

function activityItem(line) {
  const item = document.createElement("li");
  item.dataset.seq = String(line.seq);
  item.dataset.kind = line.kind;
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = KIND_LABELS[line.kind] || line.kind.replace(/_/g, " ");
  const amount = document.createElement("span");
  const shown = lineAmount(line);
  amount.className = `amount ${shown.kind}`;
  amount.textContent = shown.text;
  const detail = document.createElement("span");
  detail.className = "detail";
  const when = document.createElement("time");
  when.dateTime = line.at;
  when.textContent = formatWhen(line.at);
  // Server text goes in as textContent only, never as markup.
  detail.append(when, line.description ? ` · ${line.description}` : "");
  item.append(what, amount, detail);
  return item;
}

async function refreshAccount() {
  const [account, statement] = await Promise.all([
    api(`/v1/accounts/${state.accountId}`),
    api(`/v1/accounts/${state.accountId}/statement?limit=${STATEMENT_LINES_SHOWN}`),
  ]);
  const balance = $("balance");
  balance.textContent = formatVnd(account.available_vnd);
  balance.dataset.vnd = String(account.available_vnd);
  const items = statement.lines.slice(0, STATEMENT_LINES_SHOWN).map(activityItem);
  $("activity").replaceChildren(...items);
  $("activity-empty").hidden = items.length > 0;
  $("account").hidden = false;
}

// ---------------------------------------------------------------- parking

function formatMinutes(minutes) {
  const hours = Math.floor(minutes / MINUTES_PER_HOUR);
  const rest = minutes % MINUTES_PER_HOUR;
  if (hours === 0) return `${rest} min`;
  return rest === 0 ? `${hours} h` : `${hours} h ${String(rest).padStart(2, "0")} min`;
}

/** What is left of a session's paid time, or how long ago it ran out. */
export function formatTimeLeft(secondsLeft) {
  if (secondsLeft <= 0) {
    const ago = Math.floor(-secondsLeft / S_PER_MINUTE);
    return ago < 1 ? "paid time just ended" : `paid time ended ${formatMinutes(ago)} ago`;
  }
  const minutes = Math.floor(secondsLeft / S_PER_MINUTE);
  return minutes < 1 ? "less than a minute left" : `${formatMinutes(minutes)} left`;
}

/**
 * An ISO instant moved on by whole seconds, in UTC. A Date keeps only milliseconds, so the
 * server's microseconds are carried over as they were: they do not change when seconds are added.
 */
export function laterBy(isoText, seconds) {
  const moved = new Date(Date.parse(isoText) + seconds * MS_PER_S).toISOString();
  const fraction = /\.(\d+)/.exec(isoText);
  return fraction ? moved.replace(/\.\d+Z$/, `.${fraction[1]}Z`) : moved;
}

function secondsLeft(paidUntil) {
  return Date.parse(paidUntil) / MS_PER_S - serverNow();
}

function bySoonestEnd(a, b) {
  return Date.parse(a.paid_until) - Date.parse(b.paid_until);
}

/** Time left and the reminder, recomputed every tick so a session crosses into it on time. */
function showTiming(item) {
  const left = secondsLeft(item.dataset.paidUntil);
  // A session already past its paid end is a reminder too: it is being parked unpaid.
  const reminder = left <= PARKING_REMINDER_MINUTES * S_PER_MINUTE;
  item.querySelector(".time-left").textContent = formatTimeLeft(left);
  item.classList.toggle("reminder", reminder);
  item.dataset.reminder = String(reminder);
  item.querySelector(".extend").hidden = !reminder;
}

function sessionItem(session) {
  const parking = state.parking;
  const item = document.createElement("li");
  item.className = "session";
  item.dataset.sessionId = session.session_id;
  item.dataset.lotId = session.lot_id;
  item.dataset.paidUntil = session.paid_until;
  item.dataset.heldVnd = String(session.held_vnd);
  // Server text goes in as textContent only, never as markup.
  const plate = document.createElement("span");
  plate.className = "plate";
  plate.textContent = session.plate_display;
  const lot = document.createElement("span");
  lot.className = "lot";
  lot.textContent = parking.lotNames.get(session.lot_id) || session.lot_id;
  const times = document.createElement("p");
  times.className = "times";
  const paidUntil = document.createElement("time");
  paidUntil.className = "paid-until";
  paidUntil.dateTime = session.paid_until;
  paidUntil.textContent = formatWhen(session.paid_until);
  const left = document.createElement("span");
  left.className = "time-left";
  times.append("Paid until ", paidUntil, " · ", left);
  const held = document.createElement("p");
  held.className = "held";
  held.textContent = `${formatVnd(session.held_vnd)} held`;
  const extend = document.createElement("button");
  extend.type = "button";
  extend.className = "extend";
  extend.textContent = "Extend 1 h";
  extend.disabled = parking.extending.has(session.session_id);
  extend.addEventListener("click", () => extendSession(session.session_id));
  const outcome = document.createElement("p");
  outcome.className = "outcome";
  outcome.setAttribute("role", "status");
  const shown = parking.outcomes.get(session.session_id);
  outcome.hidden = !shown;
  if (shown) {
    outcome.textContent = shown.text;
    outcome.dataset.outcome = shown.kind;
    if (shown.code) outcome.dataset.code = shown.code;
  }
  item.append(plate, lot, times, held, extend, outcome);
  showTiming(item);
  return item;
}

function renderParking() {
  const items = state.parking.sessions.map(sessionItem);
  $("parking-sessions").replaceChildren(...items);
  $("parking-empty").hidden = items.length > 0;
  $("parking").hidden = false;
}

/** The listed session, or the answer of an extension the list has not caught up with yet. */
function fresherOf(listed) {
  const known = state.parking.fresher.get(listed.session_id);
  if (!known) return listed;
  if (Date.parse(known.paid_until) > Date.parse(listed.paid_until)) return known;
  state.parking.fresher.delete(listed.session_id);
  return listed;
}

/** Forgets what belongs to sessions no longer listed, so the maps stay as small as the list. */
function forgetUnlisted(sessions) {
  const listed = new Set(sessions.map((session) => session.session_id));
  for (const map of [state.parking.fresher, state.parking.outcomes]) {
    for (const id of map.keys()) if (!listed.has(id)) map.delete(id);
  }
}

async function learnLotNames(sessions) {
  const names = state.parking.lotNames;
  const unknown = [...new Set(sessions.map((session) => session.lot_id))].filter(
    (lotId) => !names.has(lotId),
  );
  await Promise.all(
    unknown.map(async (lotId) => {
      try {
        names.set(lotId, (await api(`/v1/parking/lots/${encodeURIComponent(lotId)}`)).name);
      } catch {
        // The lot's id is shown instead, and its name asked for again at the next refresh.
      }
    }),
  );
}

async function refreshParking() {
  const parking = state.parking;
  if (parking.refreshing) {
    parking.refreshAgain = true; // an extension's answer arrived while a refresh was under way
    return;
  }
  parking.refreshing = true;
  const token = state.token;
  try {
    do {
      parking.refreshAgain = false;
      const page = await api(
        `/v1/parking/sessions?mine=true&state=open&limit=${PARKING_SESSIONS_SHOWN}`,
      );
      await learnLotNames(page.items);
      if (state.token !== token) return; // signed out meanwhile
      parking.sessions = page.items.map(fresherOf).sort(bySoonestEnd);
      forgetUnlisted(parking.sessions);
      renderParking();
    } while (parking.refreshAgain);
    $("parking-error").hidden = true;
  } catch (error) {
    // A refused token is the ticket cycle's to report; it asks for a new one.
    if (error instanceof ApiError && error.status === UNAUTHORIZED) return;
    if (state.token !== token) return;
    $("parking-error").textContent = `Parking not up to date: ${error.message}`;
    $("parking-error").hidden = false;
  } finally {
    parking.refreshing = false;
  }
}

async function extendSession(sessionId) {
  const parking = state.parking;
  const session = parking.sessions.find((listed) => listed.session_id === sessionId);
  if (!session || parking.extending.has(sessionId)) return;
  parking.extending.add(sessionId);
  parking.outcomes.set(sessionId, { kind: "busy", text: "Extending…" });
  renderParking();
  // A fresh id for every tap, and the new end counted from the end shown: a tap on a stale page
  // (or a second phone) asks for an end already paid and is refused as `extension_not_later`,
  // so an hour is never paid twice by accident.
  const body = {
    extension_id: `app-${crypto.randomUUID()}`,
    paid_until: laterBy(session.paid_until, PARKING_EXTENSION_S),
  };
  try {
    const extended = await api(`/v1/parking/sessions/${encodeURIComponent(sessionId)}/extensions`, {
      method: "POST",
      json: body,
    });
    parking.fresher.set(sessionId, extended);
    parking.sessions = parking.sessions
      .map((listed) => (listed.session_id === sessionId ? extended : listed))
      .sort(bySoonestEnd);
    const text = `Extended: paid until ${formatWhen(extended.paid_until)}`;
    parking.outcomes.set(sessionId, { kind: "ok", text });
  } catch (error) {
    const outcome =
      error instanceof ApiError
        ? { kind: "refused", code: error.code, text: `Not extended: ${error.message}` }
        : { kind: "failed", text: "Not extended: the server could not be reached. Tap again." };
    parking.outcomes.set(sessionId, outcome);
  } finally {
    parking.extending.delete(sessionId);
  }
  renderParking();
  await refreshParking();
}

function stopParking() {
  const parking = state.parking;
  clearTimeout(parking.timer);
  parking.timer = null;
  parking.sessions = [];
  parking.fresher.clear();
  parking.outcomes.clear();
  $("parking-sessions").replaceChildren();
  $("parking-error").hidden = true;
  $("parking").hidden = true;
}

function runParking() {
  state.parking.timer = setTimeout(runParking, PARKING_REFRESH_S * MS_PER_S);
  refreshParking();
}

function startParking() {
  stopParking();
  runParking();
}

// ---------------------------------------------------------------- the cycle

function stopCycle() {
  clearTimeout(state.cycleTimer);
  state.cycleTimer = null;
}

function scheduleCycle(delayS) {
  stopCycle();
  state.nextCodeAtMs = Date.now() + delayS * MS_PER_S;
  state.cycleTimer = setTimeout(runCycle, delayS * MS_PER_S);
  tick();
}

async function runCycle() {
  if (state.cycleRunning) return;
  state.cycleRunning = true;
  try {
    await ensureCard();
    state.started = true;
    await showCode(await makeCode());
    await refreshAccount();
    setStatus("Ready — hold the code under the reader.", "ok");
    scheduleCycle(CODE_INTERVAL_S);
  } catch (error) {
    if (error instanceof ApiError && error.status === UNAUTHORIZED) {
      localStorage.removeItem(TOKEN_STORAGE_KEY);
      askForToken("The server refused the saved token; paste a new one.");
      return;
    }
    showError(error);
    if (error instanceof CardUnusable) {
      stopCycle();
      withdrawAll();
      return;
    }
    scheduleCycle(RETRY_AFTER_S);
  } finally {
    state.cycleRunning = false;
  }
}

function withdrawAll() {
  const qr = $("qr");
  qr.replaceChildren();
  delete qr.dataset.code;
  state.shownCode = null;
  $("ticket").hidden = true;
}

function tick() {
  withdrawStaleCode();
  const left = Math.max(0, Math.ceil((state.nextCodeAtMs - Date.now()) / MS_PER_S));
  $("countdown").textContent = state.cycleTimer ? String(left) : "–";
  for (const item of $("parking-sessions").children) showTiming(item);
}

// ---------------------------------------------------------------- start

async function signIn() {
  state.token = localStorage.getItem(TOKEN_STORAGE_KEY);
  if (!state.token) {
    askForToken("Paste your rider token to show your ticket.", "busy");
    return;
  }
  $("token-form").hidden = true;
  $("sign-out").hidden = false;
  setStatus("Checking the token…", "busy");
  let me;
  try {
    me = await api("/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === UNAUTHORIZED) {
      localStorage.removeItem(TOKEN_STORAGE_KEY);
      askForToken("The server refused this token; paste a new one.");
    } else {
      showError(error);
      setTimeout(signIn, RETRY_AFTER_S * MS_PER_S);
    }
    return;
  }
  if (me.role !== ROLE_RIDER || !me.account_id) {
    localStorage.removeItem(TOKEN_STORAGE_KEY);
    askForToken(`That is a ${me.role} token; this page needs a rider token.`);
    return;
  }
  state.accountId = me.account_id;
  startParking();
  await runCycle();
}

function signOut() {
  // The device key stays: it belongs to this browser, not to the rider who used it.
  localStorage.removeItem(TOKEN_STORAGE_KEY);
  localStorage.removeItem(CARD_STORAGE_KEY);
  state.token = null;
  state.card = null;
  state.started = false;
  withdrawAll();
  askForToken("Signed out. Paste a rider token to show a ticket.", "busy");
}

async function main() {
  window.addEventListener("unhandledrejection", (event) => showError(event.reason));
  window.addEventListener("error", (event) => showError(event.error || event.message));
  if (!window.isSecureContext || !crypto.subtle) {
    setStatus("This page needs HTTPS (or localhost) for its device key.", "error");
    return;
  }
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_STORAGE_KEY, token);
    $("token-input").value = "";
    signIn().catch(showError);
  });
  $("sign-out").addEventListener("click", signOut);
  // Phones throttle timers on a hidden page; a code older than one interval is replaced at once
  // when the rider comes back to it.
  document.addEventListener("visibilitychange", () => {
    const code = state.shownCode;
    const behind = !code || serverNow() - code.generatedAt >= CODE_INTERVAL_S;
    if (document.visibilityState === "visible" && state.cycleTimer && behind) runCycle();
    if (document.visibilityState === "visible" && state.parking.timer) refreshParking();
  });
  setInterval(tick, TICK_MS);

  takeTokenFromFragment();
  state.keyPair = await deviceKeyPair();
  await showDevice();
  await signIn();
}

main().catch(showError);
