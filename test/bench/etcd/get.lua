-- wrk script for etcd's HTTP/JSON gateway: range (GET) of the keys bench/<26 digits> that run.sh writes
-- beforehand, cycling over 10,000 keys like cairn's test/bench/wrk/get.lua. SERIALIZABLE=1 asks for
-- serializable reads (answered by the member itself), else linearizable ones (etcd's default).
-- Usage: ETCD_API=/v3 SERIALIZABLE=0 wrk -t1 -c64 -d10s --latency -s get.lua http://127.0.0.1:2379
-- base64.lua beside this script (wrk runs it from any directory).
local base64 = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "base64.lua")

local KEYS = 10000
local api = os.getenv("ETCD_API") or "/v3"
local serializable = os.getenv("SERIALIZABLE") == "1" and "true" or "false"
local headers = { ["Content-Type"] = "application/json" }
local bodies = {}
for n = 0, KEYS - 1 do
  bodies[n] = string.format('{"key":"%s","serializable":%s}', base64(string.format("bench/%026d", n)), serializable)
end

local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("POST", api .. "/kv/range", headers, bodies[counter % KEYS])
end

done = function(summary, latency, requests)
  io.write(string.format("cairn-latency-us p999 %d mean %.1f\n", latency:percentile(99.9), latency.mean))
end
