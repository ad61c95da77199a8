-- wrk script for loadtests/bench_parking_enforcement.py: an officer's plate checks.
-- PATHS names a file of request paths, one a line (`/v1/parking/enforcement?lot_id=&plate=`);
-- each request takes one at random. TOKEN is the officer's bearer token.
local requests = {}

function init(args)
  local headers = {["Authorization"] = "Bearer " .. os.getenv("TOKEN")}
  for path in io.lines(os.getenv("PATHS")) do
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  math.randomseed(os.time())
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
