-- GCRA for every quota of one request, decided atomically on Redis server time.
-- See RedisBackend in redis.rs for the KEYS/ARGV layout and the reply.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[1])
local ahead = {}
local tats = {}
local refused = false
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local capacity = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  ahead[i] = tat - now
  local new = tat + cost * interval
  if new - now <= capacity then
    tats[i] = new
  elseif ARGV[3 * i + 1] == '1' then
    refused = true
  end
end
if not refused then
  for i = 1, #KEYS do
    local new = tats[i]
    if new then
      local ttl = math.ceil((new - now) / 1000) + 1
      redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', string.format('%.0f', ttl))
    end
  end
end
return ahead
