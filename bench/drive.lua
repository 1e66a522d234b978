-- Drives one benchmark phase: every request is pre-built from one line of a file. In "once" mode
-- the lines are dealt out between wrk's threads so that no two threads send the same one.
--
--   wrk ... -s bench/drive.lua URL -- FILE MODE THREADS PATH [COOKIE]
--
-- MODE "get":  each line is a Cookie header, cycled (a few thousand browsers revisiting);
--      "once": the same, but a line is never sent twice (each rotation uses its own session);
--      once the lines run out the thread idles on the bare path, which the driver reports;
--      "post": each line is a form body, POSTed with the fixed COOKIE header;
--      "postonce": the same, each body sent once (an app's refresh token each);
--      "bearer": each line is an Authorization header (an app's call), cycled.
-- done() prints one line the driver parses: BENCH {json}.

local threads, counter = {}, 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local file, threads_total = args[1], tonumber(args[3])
  mode, path = args[2], args[4]
  local cookie = args[5]
  reqs, exhausted = {}, 0
  local i = 0
  for line in io.lines(file) do
    if (mode ~= "once" and mode ~= "postonce") or i % threads_total == id then
      if mode == "post" or mode == "postonce" then
        reqs[#reqs + 1] = wrk.format("POST", path, {
          ["Cookie"] = cookie,
          ["Content-Type"] = "application/x-www-form-urlencoded"}, line)
      elseif mode == "bearer" then
        reqs[#reqs + 1] = wrk.format("GET", path, {["Authorization"] = line})
      elseif line == "" then
        reqs[#reqs + 1] = wrk.format("GET", path)
      else
        reqs[#reqs + 1] = wrk.format("GET", path, {["Cookie"] = line})
      end
    end
    i = i + 1
  end
  idle = wrk.format("GET", "/healthz")
  once = mode == "once" or mode == "postonce"
  n = once and 0 or id * 7919 % #reqs  -- cycling threads start apart
end

function request()
  n = n + 1
  if n > #reqs then
    if once then
      exhausted = exhausted + 1
      return idle
    end
    n = 1
  end
  return reqs[n]
end

function done(summary, latency, requests)
  local exhausted_total = 0
  for _, thread in ipairs(threads) do
    exhausted_total = exhausted_total + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "status_errors": %d, "exhausted": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, exhausted_total))
end
