// The attendant page's service worker: keeps the page itself (its HTML, scripts and styles) so
// a handheld reloaded or restarted without a network still opens it, with its outbox. It serves
// the network's copy whenever there is one; the parking API is never touched here, because the
// outbox, not a cache, is what makes an action survive.

const CACHE_PREFIX = "tapledger-attendant-";
const CACHE = `${CACHE_PREFIX}v1`;
const SHELL = [
  "/attendant",
  "/static/attendant.js",
  "/static/attendant-outbox.js",
  "/static/vnd.js",
  "/static/attendant.css",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  const stale = (name) => name.startsWith(CACHE_PREFIX) && name !== CACHE;
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter(stale).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const ours = url.origin === self.location.origin && SHELL.includes(url.pathname);
  if (event.request.method !== "GET" || !ours) return; // the browser fetches it as usual
  event.respondWith(networkFirst(event.request, url.pathname));
});

async function networkFirst(request, path) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(path, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(path);
    if (kept) return kept;
    throw error;
  }
}
