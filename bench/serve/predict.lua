-- wrk script (bench/serve/run.sh): one TEI /predict request per text, the texts in turn, each body built once.
--   wrk -t1 -c1 -d20s -s bench/serve/predict.lua http://127.0.0.1:PORT -- TEXTS
-- At the end it prints one line of key=value pairs: requests, errors (non-2xx, socket), latency p50 / p99 (ms).
local requests, n, i, errors = {}, 0, 0, 0

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

function init(args)
  local path = args[1] or error("predict.lua: the texts file is the script's argument (after --)")
  for line in io.lines(path) do
    if #line > 0 then
      n = n + 1
      requests[n] = wrk.format("POST", "/predict", { ["Content-Type"] = "application/json" },
        '{"inputs":' .. json_string(line) .. ',"truncate":true}')
    end
  end
  if n == 0 then error("predict.lua: " .. path .. ": no texts") end
end

function request()
  i = i % n + 1
  return requests[i]
end

function response(status)
  if status ~= 200 then errors = errors + 1 end
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format("wrk requests=%d errors=%d non_200=%d p50_ms=%.3f p99_ms=%.3f mean_ms=%.3f\n",
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
