-- wrk script: PUT of 256-byte values to keys bench/<n> (32 bytes), n cycling over 10,000 keys.
-- Usage: wrk -t1 -c64 -d10s --latency -s put.lua http://127.0.0.1:2379
local counter = 0
local value = string.rep("v", 256)
local headers = { ["Content-Type"] = "application/octet-stream" }

request = function()
  counter = counter + 1
  local key = string.format("bench/%026d", counter % 10000)
  return wrk.format("PUT", "/v1/kv/" .. key, headers, value)
end

done = function(summary, latency, requests)
  io.write(string.format("cairn-latency-us p999 %d mean %.1f\n", latency:percentile(99.9), latency.mean))
end
