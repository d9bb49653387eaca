-- wrk script: GET of keys bench/<n> written by put.lua; set SERIALIZABLE=1 for serializable reads.
-- Usage: wrk -t1 -c64 -d10s --latency -s get.lua http://127.0.0.1:2379
local counter = 0
local suffix = os.getenv("SERIALIZABLE") == "1" and "?serializable=true" or ""

request = function()
  counter = counter + 1
  local key = string.format("bench/%026d", counter % 10000)
  return wrk.format("GET", "/v1/kv/" .. key .. suffix)
end

done = function(summary, latency, requests)
  io.write(string.format("cairn-latency-us p999 %d mean %.1f\n", latency:percentile(99.9), latency.mean))
end
