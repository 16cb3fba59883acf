// The read cache's Lua scripts: each decision (fill or advance against the floor) is one atomic step in Redis.

/*
 * Per cache key two Redis keys, in one hash slot (the `{…}` tag): `<prefix>{<key>}` holds `<version>:<json>`
 * with the value's TTL, and `<prefix>{<key>}:floor` the floor version with the floor's TTL.
 * `allow-key-locking` is an Upstash-only flag (Upstash then locks only the declared keys); open-source Redis
 * refuses it, so TCP clients drop it first (shared/redis/lua-shebang.ts; tcpRedis and the local bridge do).
 */

/** KEYS: value. */
export const getScript = `#!lua flags=allow-key-locking
return redis.call('GET', KEYS[1])`;

/** Raises the floor (KEYS[2]) to ARGV[1] and keeps it for at least ARGV[2] ms. */
const raiseFloor = `
local function raise_floor(version_arg, ttl_arg)
  local floor = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  local ttl = tonumber(ttl_arg)
  local left = redis.call('PTTL', KEYS[2])
  if tonumber(version_arg) > floor then
    redis.call('SET', KEYS[2], version_arg, 'PX', math.max(ttl, left))
  elseif left < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
local function stored_version()
  local current = redis.call('GET', KEYS[1])
  if not current then return nil end
  return tonumber(string.match(current, '^(%d+):')) or -1
end`;

/**
 * KEYS: value, floor. ARGV: version, payload (`<version>:<json>`), value TTL ms, floor TTL ms.
 * Returns 1 when stored, 0 when refused (below the floor, or not newer than what is stored).
 */
export const fillScript = `#!lua flags=allow-key-locking
${raiseFloor}
local version = tonumber(ARGV[1])
local floor = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if version < floor then return 0 end
local stored = stored_version()
if stored and stored >= version then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
raise_floor(ARGV[1], ARGV[4])
return 1`;

/**
 * KEYS: value, floor. ARGV: version, floor TTL ms. Raises the floor; deletes a stored value older than version.
 * Returns 1 when a value was dropped.
 */
export const advanceScript = `#!lua flags=allow-key-locking
${raiseFloor}
raise_floor(ARGV[1], ARGV[2])
local stored = stored_version()
if stored and stored < tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;
