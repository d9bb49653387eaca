-- wrk script for etcd's HTTP/JSON gateway: PUT of 256-byte values to the 32-byte keys bench/<26 digits>,
-- cycling over 10,000 keys: the same keys and sizes as cairn's test/bench/wrk/put.lua. The gateway takes
-- keys and values in base64, so the 10,000 bodies are built once, before the run, not per request.
-- Usage: ETCD_API=/v3 wrk -t1 -c64 -d10s --latency -s put.lua http://127.0.0.1:2379
-- (ETCD_API: /v3 for etcd 3.4 and later, /v3beta for 3.3; run.sh finds out which one answers.)
-- base64.lua beside this script (wrk runs it from any directory).
local base64 = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "base64.lua")

local KEYS = 10000
local api = os.getenv("ETCD_API") or "/v3"
local value = base64(string.rep("v", 256))
local headers = { ["Content-Type"] = "application/json" }
local bodies = {}
for n = 0, KEYS - 1 do
  bodies[n] = string.format('{"key":"%s","value":"%s"}', base64(string.format("bench/%026d", n)), value)
end

local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("POST", api .. "/kv/put", headers, bodies[counter % KEYS])
end

done = function(summary, latency, requests)
  io.write(string.format("cairn-latency-us p999 %d mean %.1f\n", latency:percentile(99.9), latency.mean))
end
