-- wrk script for loadtests/run_taps.py: posts pre-built bodies, each once, in order.
-- BODIES names a file of lines "path<TAB>bearer token<TAB>JSON body". DELAY_MS, when set,
-- makes each connection wait that long on average between its requests (a paced, closed-loop
-- load).
local bodies = {}
local next_index = 1
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")

function init(args)
  for line in io.lines(os.getenv("BODIES")) do
    local path, token, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
    bodies[#bodies + 1] = wrk.format("POST", path, {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
    }, body)
  end
end

function request()
  local r = bodies[next_index]
  next_index = next_index + 1
  if next_index > #bodies then
    next_index = 1
    wrapped = (wrapped or 0) + 1
  end
  return r
end

if delay_ms > 0 then
  -- Drawn anew for every request, uniform around DELAY_MS: a fixed delay would keep the
  -- connections in step, and the server would see bursts of one request per connection.
  math.randomseed(os.time())
  function delay()
    return math.random(0, 2 * delay_ms)
  end
end

function done(summary, latency, requests)
  local non_2xx = summary.errors.status
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, non_2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
