-- base64 for put.lua and get.lua (etcd's JSON gateway takes keys and values in base64).
local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Plain arithmetic rather than the bit library, so it runs on Lua 5.1 as well as LuaJIT.
local function base64(text)
  local out = {}
  for i = 1, #text, 3 do
    local a, b, c = text:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local sextets = { math.floor(n / 262144) % 64, math.floor(n / 4096) % 64, math.floor(n / 64) % 64, n % 64 }
    local count = c and 4 or (b and 3 or 2)
    for j = 1, 4 do
      out[#out + 1] = j <= count and ALPHABET:sub(sextets[j] + 1, sextets[j] + 1) or "="
    end
  end
  return table.concat(out)
end

return base64
