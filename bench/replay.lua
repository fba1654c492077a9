-- wrk script: POST the deliveries of REQS, one each, in order, cycling; counts answers by status.
-- REQS holds one delivery a line: path<TAB>body<TAB>signature<TAB>timestamp ("-" for no signature:
-- batch callbacks carry their secret in the path's query string).
-- Host is set by hand: wrk.format at load time has none, and strict HTTP/1.1 parsers (h11) refuse that.
local reqs, i = {}, 0
for line in io.lines(os.getenv("REQS")) do
  local path, body, sig, ts = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)")
  local headers = {["Host"] = "127.0.0.1", ["Content-Type"] = "application/json"}
  if sig ~= "-" then
    headers["X-Hume-AI-Webhook-Signature"] = sig
    headers["X-Hume-AI-Webhook-Timestamp"] = ts
  end
  reqs[#reqs + 1] = wrk.format("POST", path, headers, body)
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function init(args) accepted, duplicate, other, lines = 0, 0, 0, #reqs end

request = function() i = i % #reqs + 1; return reqs[i] end

-- 202: stored now; 200: already stored (a replay); anything else means the run measured nothing.
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1
  elseif status == 200 then duplicate = duplicate + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local a, d, o, n = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a, d, o, n = a + t:get("accepted"), d + t:get("duplicate"), o + t:get("other"), n + t:get("lines")
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d accepted=%d duplicate=%d other=%d lines=%d "
    .. "socket_errors=%d p50_us=%d p99_us=%d\n", summary.requests, summary.duration, a, d, o, n,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
