package redis

import goredis "github.com/redis/go-redis/v9"

// Each channel's keys carry its name as a hash tag, {name}, so that they
// sit in one Redis Cluster slot and every script touches one slot:
//
//	PREFIX:{name}:m     hash: e (epoch), o (latest offset), t (its time, ms)
//	PREFIX:{name}:h     stream: the history, entry ID "offset-0", fields t and b
//	PREFIX:{name}:k:KEY string: "epoch offset" of an idempotency key's publication
//	PREFIX:{name}:p     hash: connection ID → member, for presence
//	PREFIX:{name}:z     sorted set: connection ID → when its member expires (ms)
//	PREFIX:{name}:e     Pub/Sub channel of the channel's events
//	PREFIX:channels     sorted set of channel names (score 0), for channelList
//
// The meta hash outlives the history so that offsets go on after the
// history has been trimmed to nothing; it goes only with a removal, or
// with Redis's data, and then the epoch changes.

// The events on PREFIX:{name}:e, space-separated:
//
//	p EPOCH OFFSET TIME BODY   a publication; BODY as encodeBody writes it
//	r EPOCH                    the channel was removed; it goes on in EPOCH
//	j NODE MEMBER              a subscriber joined on NODE; MEMBER in JSON
//	l NODE MEMBER              a subscriber left

// publishScript appends a publication: the epoch (made if the channel has
// none), the next offset, a time that never goes down, the stream entry,
// trimming, the idempotency key and the announcement, in one step.
//
// KEYS: meta, history, idempotency key (any key of the slot when ARGV[4]
// is 0). ARGV: body, now (ms), new epoch, idempotency window (ms, 0 for
// none), most publications kept (0 for all), longest age kept (ms, 0 for
// all), events channel. Returns {epoch, offset, time, duplicate (0|1)}.
var publishScript = goredis.NewScript(`
local meta, hist, idem = KEYS[1], KEYS[2], KEYS[3]
local body, now, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local maxlen, maxage = tonumber(ARGV[5]), tonumber(ARGV[6])
local m = redis.call('HMGET', meta, 'e', 'o', 't')
local epoch = m[1]
if not epoch then
  -- A new channel, or one whose meta Redis lost (evicted, say): a stream
  -- left over is of the lost epoch, and would refuse the offsets to come.
  epoch = ARGV[3]
  redis.call('DEL', hist)
  redis.call('HSET', meta, 'e', epoch)
end
if window > 0 then
  local seen = redis.call('GET', idem)
  if seen then
    local sep = string.find(seen, ' ', 1, true)
    if string.sub(seen, 1, sep - 1) == epoch then
      local o = string.sub(seen, sep + 1)
      local e = redis.call('XRANGE', hist, o .. '-0', o .. '-0')
      local t = m[3] or '0'
      if e[1] then t = e[1][2][2] end
      return {epoch, o, t, '1'}
    end
  end
end
local offset = tonumber(m[2] or '0') + 1
local last = tonumber(m[3] or '0')
if now < last then now = last end
local o, t = string.format('%d', offset), string.format('%d', now)
-- The entry first: Redis does not undo a script's writes when a later
-- command fails, and an offset taken without its entry is a hole.
redis.call('XADD', hist, o .. '-0', 't', t, 'b', body)
redis.call('HSET', meta, 'o', o, 't', t)
if maxlen > 0 then redis.call('XTRIM', hist, 'MAXLEN', maxlen) end
if maxage > 0 then
  -- The oldest first, alone: most publishes find it young and stop. At
  -- most 64 go per publish, which keeps up with any rate of publishing.
  local first = redis.call('XRANGE', hist, '-', '+', 'COUNT', 1)[1]
  if first and tonumber(first[2][2]) < now - maxage then
    local gone = {}
    for _, e in ipairs(redis.call('XRANGE', hist, '-', '+', 'COUNT', 64)) do
      if tonumber(e[2][2]) >= now - maxage then break end
      gone[#gone + 1] = e[1]
    end
    redis.call('XDEL', hist, unpack(gone))
  end
  redis.call('PEXPIRE', hist, maxage)
end
if window > 0 then redis.call('SET', idem, epoch .. ' ' .. o, 'PX', window) end
redis.call('PUBLISH', ARGV[7], 'p ' .. epoch .. ' ' .. o .. ' ' .. t .. ' ' .. body)
return {epoch, o, t, '0'}
`)

// positionScript returns a channel's position, {epoch, offset}, giving it
// ARGV[1] as its epoch if it has none: a subscriber or reader must learn
// the epoch that the channel's first publication will carry.
//
// KEYS: meta. ARGV: new epoch.
var positionScript = goredis.NewScript(`
redis.call('HSETNX', KEYS[1], 'e', ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'e', 'o')
return {m[1], m[2] or '0'}
`)

// rewindScript starts a new epoch for a channel that Redis took back in
// time (restarted from an older file, or failed over to a replica that
// lagged): offsets seen once would name other publications. Nothing
// changes when the channel is in another epoch already (another node
// did this).
//
// KEYS: meta. ARGV: the epoch seen, the new epoch. Returns {epoch,
// offset}.
var rewindScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'e', 'o')
if m[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'e', ARGV[2])
  m[1] = ARGV[2]
end
return {m[1], m[2] or '0'}
`)

// historyScript reads a page of history with the position it belongs to,
// at one moment.
//
// KEYS: meta, history. ARGV: new epoch (as positionScript), first ID,
// last ID, count, "rev" for newest first. Returns {epoch, offset,
// entries}, each entry {id, {"t", time, "b", body}}.
var historyScript = goredis.NewScript(`
redis.call('HSETNX', KEYS[1], 'e', ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'e', 'o')
local entries
if ARGV[5] == 'rev' then
  entries = redis.call('XREVRANGE', KEYS[2], ARGV[3], ARGV[2], 'COUNT', ARGV[4])
else
  entries = redis.call('XRANGE', KEYS[2], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
end
return {m[1], m[2] or '0', entries}
`)

// removeScript deletes a channel's history and presence and starts it
// again at offset 0 in a new epoch, telling every node.
//
// KEYS: meta, history, presence, presence expiries. ARGV: new epoch,
// events channel.
var removeScript = goredis.NewScript(`
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'e', ARGV[1], 'o', '0')
redis.call('PUBLISH', ARGV[2], 'r ' .. ARGV[1])
return ARGV[1]
`)

// expireMembers is the start of the presence scripts: it drops the
// members whose expiry has passed (their node stopped renewing them) and
// announces each one's leave to every node ("l - MEMBER": no node
// announced it already). Expiries are in Redis's time, so that nodes'
// clocks need not agree. KEYS: presence, presence expiries. ARGV[2]:
// events channel.
const expireMembers = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(gone) do
  local m = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  if m then redis.call('PUBLISH', ARGV[2], 'l - ' .. m) end
end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
`

// presenceScript keeps a node's members of a channel alive and drops
// those whose node stopped doing so: Redis 7.0 has no per-field expiry,
// so each member's expiry is its score in a sorted set beside the hash.
// The keys expire with the member that expires last.
//
// Each member it adds that was not listed (a join, or a renewal that came
// after the member had expired and had its leave announced) is announced
// as a join from ARGV[3]: the joining node, which fanout announced to
// already, or "-" from a renewal, which every node announces.
//
// KEYS: presence, presence expiries. ARGV: expiry (ms), events channel,
// announcing node, then pairs of connection ID and member.
var presenceScript = goredis.NewScript(expireMembers + `
local ttl = tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  if redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('PUBLISH', ARGV[2], 'j ' .. ARGV[3] .. ' ' .. ARGV[i + 1])
  end
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[i])
end
if #ARGV > 3 then
  local last = redis.call('ZRANGE', KEYS[2], 0, 0, 'REV', 'WITHSCORES')[2]
  redis.call('PEXPIREAT', KEYS[1], last)
  redis.call('PEXPIREAT', KEYS[2], last)
end
return 0
`)

// leaveScript takes a member out of presence and announces its leave,
// unless it was gone already: an expiry announced that.
//
// KEYS: presence, presence expiries. ARGV: connection ID, events
// channel, the announcement.
var leaveScript = goredis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
`)

// membersScript lists a channel's live members, {count, members...}, or
// with "count" only {count}, dropping the expired ones.
//
// KEYS: presence, presence expiries. ARGV: "count" or "", events
// channel.
var membersScript = goredis.NewScript(expireMembers + `
if ARGV[1] == 'count' then return {redis.call('HLEN', KEYS[1])} end
local all = redis.call('HVALS', KEYS[1])
table.insert(all, 1, #all)
return all
`)
