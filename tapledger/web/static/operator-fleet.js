// The validator fleet for scheme staff (docs/fleet.md): every registered device with its latest
// health report and the flags the backend raises (stale, offline, behind the deny list, deep
// outbox, clock skewed). Read from GET /v1/validators, which only staff may call.

// Pages of the fleet read at most: 4 × 500 devices.
const FLEET_PAGES_MAX = 4;
const MS_PER_S = 1000;

function cell(row, text, numeric = false) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.append(td);
}

function ago(unixS, nowMs) {
  if (unixS === null || unixS === undefined) return "never";
  const seconds = Math.max(0, Math.round(nowMs / MS_PER_S - unixS));
  return `${seconds} s ago`;
}

export async function loadFleet(getJson, tbody, summary) {
  const items = [];
  let after = 0;
  for (let page = 0; page < FLEET_PAGES_MAX && after !== null; page += 1) {
    const answer = await getJson(`/v1/validators?after=${after}`);
    items.push(...answer.items);
    after = answer.next_after;
  }
  const now = Date.now();
  tbody.replaceChildren();
  for (const device of items) {
    const row = document.createElement("tr");
    row.dataset.validator = String(device.validator_id);
    row.dataset.flags = device.flags.join(",");
    const health = device.health;
    cell(row, String(device.validator_id), true);
    cell(row, device.kind);
    cell(row, health ? String(health.outbox_depth) : "–", true);
    cell(row, health ? ago(health.last_upload_at, now) : "never");
    cell(row, health ? ago(health.last_sync_at, now) : "never");
    cell(row, health ? String(health.deny_version) : "–", true);
    cell(row, device.flags.length ? device.flags.join(", ") : "ok");
    if (device.flags.length) row.className = "flagged";
    tbody.append(row);
  }
  const flagged = items.filter((device) => device.flags.length).length;
  summary.textContent = `${items.length} devices, ${flagged} flagged.`;
}
