// The handheld's outbox: every action is written here, with the next number of this handheld's
// sequence, before anything is sent. The number makes the action's own id and its
// Idempotency-Key, so however often an action is sent (a lost answer, a reload, a second tab),
// the server applies it once.

// A database of its own: the rider's page (same origin) owns "tapledger" at version 1, and
// opening that one at another version would lock the rider page out of its device key.
const DB_NAME = "tapledger-attendant";
const DB_VERSION = 1;
const OUTBOX_STORE = "outbox";
const META_STORE = "meta";
const SEQ_RECORD = "seq";
const ID_PREFIX = "handheld";
// An attendant queues a few actions a minute; a day offline stays well under this. Beyond it
// the handheld refuses new actions rather than let the queue grow without bound.
export const OUTBOX_ACTIONS_MAX = 500;

/** The outbox holds OUTBOX_ACTIONS_MAX actions already; nothing was written. */
export class OutboxFull extends Error {
  constructor() {
    super(`${OUTBOX_ACTIONS_MAX} actions are waiting to be sent; reconnect before adding more.`);
    this.name = "OutboxFull";
  }
}

/** The id of an action and its Idempotency-Key: one text, as docs/parking-api.md asks. */
export function actionId(device, seq) {
  return `${ID_PREFIX}-${device}-${seq}`;
}

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(OUTBOX_STORE, { keyPath: "seq" });
      request.result.createObjectStore(META_STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`This browser's storage is unavailable: ${request.error}`));
  });
}

async function withStore(mode, operate) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const request = operate(db.transaction(OUTBOX_STORE, mode).objectStore(OUTBOX_STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

/**
 * Numbers `action` with the next sequence number and queues it, in one transaction: the number
 * is counted on even if the page dies right after, so no id is ever handed out twice.
 */
export async function enqueue(device, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction([META_STORE, OUTBOX_STORE], "readwrite");
      const outbox = tx.objectStore(OUTBOX_STORE);
      const meta = tx.objectStore(META_STORE);
      let entry = null;
      let full = false;
      outbox.count().onsuccess = (counted) => {
        if (counted.target.result >= OUTBOX_ACTIONS_MAX) {
          full = true;
          tx.abort();
          return;
        }
        meta.get(SEQ_RECORD).onsuccess = (read) => {
          const seq = (read.target.result || 0) + 1;
          meta.put(seq, SEQ_RECORD);
          entry = { ...action, seq, device, id: actionId(device, seq), queued_at: new Date().toISOString() };
          outbox.add(entry);
        };
      };
      tx.oncomplete = () => resolve(entry);
      tx.onabort = () => reject(full ? new OutboxFull() : tx.error);
    });
  } finally {
    db.close();
  }
}

/** The queued actions, oldest (lowest sequence number) first. */
export function pending() {
  return withStore("readonly", (store) => store.getAll());
}

export function queuedCount() {
  return withStore("readonly", (store) => store.count());
}

/** Keeps what was learnt while sending (an End's session id) for the next attempt. */
export function update(entry) {
  return withStore("readwrite", (store) => store.put(entry));
}

/** Forgets an action the server has answered. */
export function remove(seq) {
  return withStore("readwrite", (store) => store.delete(seq));
}

/** The last sequence number handed out on this handheld (0 before the first action). */
export async function lastSeq() {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const request = db.transaction(META_STORE, "readonly").objectStore(META_STORE).get(SEQ_RECORD);
      request.onsuccess = () => resolve(request.result || 0);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}
