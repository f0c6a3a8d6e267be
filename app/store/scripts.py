"""Lua scripts of the batch lifecycle. Each touches only the keys passed in KEYS, all of
one stream (one hash slot), so each runs atomically and on Redis Cluster unchanged."""

# A message of a deleted stream's earlier life names a version beyond the (restarted)
# sequence, or a batch holding another token: it must neither create nor touch a batch.
FOREIGN = """
local function foreign(meta, seq, version, token)
  if tonumber(redis.call('GET', seq) or '0') < tonumber(version) then return true end
  local held = redis.call('HGET', meta, 'token')
  return token ~= '' and held ~= false and held ~= token
end
"""

# Every digest bucket of a version (app.store.digests): `prefix` .. ':' .. i for i below the
# `dig_buckets` of its metadata, and its `seen` counts.
BUCKETS = """
local function each_bucket(meta, prefix, command, ...)
  local count = tonumber(redis.call('HGET', meta, 'dig_buckets') or '0')
  for i = 0, count - 1 do redis.call(command, prefix .. ':' .. i, ...) end
  redis.call(command, prefix .. ':seen', ...)
end
"""

# KEYS: meta, index, seq. ARGV: version, token, started_at.
BEGIN = FOREIGN + """
if foreign(KEYS[1], KEYS[3], ARGV[1], ARGV[2]) then return 'foreign' end
redis.call('HSETNX', KEYS[1], 'status', 'running')
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'token', ARGV[2], 'started_at', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
return redis.call('HGET', KEYS[1], 'status')
"""

# KEYS: meta, rec, pages, lock, index, seq, digests, page changes, base digests, current.
# ARGV: version, page, count, staging_ttl_ms, lock_value, lock_ttl_ms, members, scores,
#       part, parts, max_records, max_bytes, now, keys, digests, hashes, keying, base,
#       buckets, base buckets.
# `keys` (each record's key as canonical JSON, "!" for none, joined by "\n") and
# `digests` and `hashes` (each key's bucket hash, hex; all joined by " ") come with
# `keying` (the key path and the ignored fields they
# were computed with; '' when the page is not keyed). A keyed page also records each key's
# digest in its bucket (`digests`; the first of a key wins, a second counts `keyed_dups`),
# counts the base's keys it holds per base bucket (`seen`) and stages the change set
# against version `base` (`page changes`: added and updated records, with counters), so
# the settle step reads counters instead of the batch (`pagediff`). A page keyed another
# way, or against another base than the batch's first page, marks the batch `diff_broken`
# (its settle diffs the whole batch).
# `members`: the page's canonical JSON records joined by "\n"; `scores`: their scores
# joined by " ". A page of `parts` parts counts once all are in; a page (or part) is stored
# once (its receipt in `pages`). All is checked before the first write: a score that is no
# number is a "bad_record <page> <position> <score>" error; a page over the budget
# (max_records, max_bytes of JSON) fails the batch `too_large`, freeing what it staged.
# `receipts` (fields of `pages`) and `records_stored` (members really added) are checked
# here and by PUBLISH against what is still stored. Returns -3 (too large), -2 (staging
# expired while the batch ran: it can never be whole), -1 (batch ended), 0 (already
# stored), 1 (stored) or 2 (whole: every page and record announced is in; a redelivered
# page of a whole batch answers 2 again, so a consumer that died settling is replaced).
STORE_PAGE = FOREIGN + BUCKETS + """
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'running' then return -1 end
if foreign(KEYS[1], KEYS[6], ARGV[1], string.match(ARGV[5], '^(.*):')) then return -1 end
local m = redis.call('HMGET', KEYS[1], 'pages_received', 'records_received',
                     'expected_pages', 'expected_records', 'bytes_received', 'receipts')
if redis.call('HLEN', KEYS[3]) ~= tonumber(m[6] or '0') then return -2 end
local function refresh()
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[7] .. ':seen', ARGV[4])
  redis.call('PEXPIRE', KEYS[8], ARGV[4])
  if redis.call('GET', KEYS[4]) == ARGV[5] then redis.call('PEXPIRE', KEYS[4], ARGV[6]) end
end
local function whole(pages, records)
  return m[3] and tonumber(m[3]) == pages and tonumber(m[4]) == records
end
local parts = tonumber(ARGV[10])
local receipt = ARGV[2]
if parts > 1 then receipt = ARGV[2] .. '/' .. ARGV[9] end
if redis.call('HEXISTS', KEYS[3], receipt) == 1 then
  refresh()
  if whole(tonumber(m[1] or '0'), tonumber(m[2] or '0')) then return 2 end
  return 0
end
local args, scores, n = {}, {}, 0
for score in string.gmatch(ARGV[8], '%S+') do
  local value = tonumber(score)
  if value == nil or value ~= value then
    return redis.error_reply('bad_record ' .. ARGV[2] .. ' ' .. (#scores + 1) .. ' ' .. score)
  end
  scores[#scores + 1] = score
end
for member in string.gmatch(ARGV[7], '[^\\n]+') do
  n = n + 1
  args[2 * n - 1] = scores[n]
  args[2 * n] = member
end
if n ~= tonumber(ARGV[3]) or #scores ~= n then
  return redis.error_reply('page ' .. receipt .. ': ' .. n .. ' members, ' .. #scores ..
                           ' scores, count ' .. ARGV[3])
end
local keyed, rkeys, digests, hashes = ARGV[17] ~= '', {}, {}, {}
if keyed then
  for key in string.gmatch(ARGV[14], '[^\\n]+') do rkeys[#rkeys + 1] = key end
  for digest in string.gmatch(ARGV[15], '%S+') do digests[#digests + 1] = digest end
  for hash in string.gmatch(ARGV[16], '%S+') do hashes[#hashes + 1] = tonumber(hash, 16) end
  if #rkeys ~= n or #digests ~= n or #hashes ~= n then
    return redis.error_reply('page ' .. receipt .. ': ' .. n .. ' members, ' .. #rkeys ..
                             ' keys, ' .. #digests .. ' digests, ' .. #hashes .. ' hashes')
  end
end
local records = tonumber(m[2] or '0') + n
local bytes = tonumber(m[5] or '0') + #ARGV[7]
if records > tonumber(ARGV[11]) or bytes > tonumber(ARGV[12]) then
  local over = 'max_records ' .. ARGV[11] .. ' (page ' .. ARGV[2] .. ' brings it to ' ..
               records .. ' records)'
  if records <= tonumber(ARGV[11]) then
    over = 'max_bytes ' .. ARGV[12] .. ' (page ' .. ARGV[2] .. ' brings it to ' .. bytes ..
           ' bytes of records)'
  end
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[7], KEYS[8])
  each_bucket(KEYS[1], KEYS[7], 'UNLINK')
  redis.call('HSET', KEYS[1], 'status', 'failed', 'version', ARGV[1], 'finished_at', ARGV[13],
             'error', cjson.encode({kind = 'too_large', page = tonumber(ARGV[2]),
                                    message = 'the batch exceeds its budget: ' .. over}))
  redis.call('HSETNX', KEYS[1], 'token', string.match(ARGV[5], '^(.*):'))
  redis.call('ZADD', KEYS[5], ARGV[1], ARGV[1])
  if redis.call('GET', KEYS[4]) == ARGV[5] then redis.call('DEL', KEYS[4]) end
  return -3
end
if not status then
  redis.call('HSET', KEYS[1], 'status', 'running', 'version', ARGV[1])
  redis.call('ZADD', KEYS[5], ARGV[1], ARGV[1])
end
redis.call('HSETNX', KEYS[1], 'token', string.match(ARGV[5], '^(.*):'))
redis.call('HSET', KEYS[3], receipt, ARGV[3])
local added = 0
for i = 1, #args, 1000 do
  added = added + redis.call('ZADD', KEYS[2], unpack(args, i, math.min(i + 999, #args)))
end
local pages = tonumber(m[1] or '0')
if parts == 1 or redis.call('HINCRBY', KEYS[3], ARGV[2] .. '/parts', 1) == parts then
  pages = pages + 1
end
redis.call('HSET', KEYS[1], 'pages_received', pages, 'records_received', records,
           'bytes_received', bytes, 'receipts', redis.call('HLEN', KEYS[3]))
redis.call('HINCRBY', KEYS[1], 'records_stored', added)
if keyed then
  local held = redis.call('HMGET', KEYS[1], 'keying', 'diff_base', 'dig_buckets')
  if not held[1] then
    redis.call('HSET', KEYS[1], 'keying', ARGV[17], 'diff_base', ARGV[18],
               'dig_buckets', ARGV[19])
  elseif held[1] ~= ARGV[17] or held[2] ~= ARGV[18] or held[3] ~= ARGV[19] then
    redis.call('HSET', KEYS[1], 'diff_broken', 1)
  end
  local base, count, base_count = tonumber(ARGV[18]), tonumber(ARGV[19]), tonumber(ARGV[20])
  if tonumber(redis.call('GET', KEYS[10]) or '0') ~= base then
    redis.call('HSET', KEYS[1], 'diff_broken', 1)
  end
  if not redis.call('HGET', KEYS[1], 'diff_broken') then
    local c = {unkeyed = 0, dups = 0, added = 0, updated = 0, matched = 0}
    local changes, seen = {}, {}
    for i = 1, n do
      local key = rkeys[i]
      if key == '!' then
        c.unkeyed = c.unkeyed + 1
      else
        local hash = hashes[i]
        if redis.call('HSETNX', KEYS[7] .. ':' .. (hash % count), key, digests[i]) == 0 then
          c.dups = c.dups + 1
        else
          local old = false
          if base > 0 then
            local home = hash % base_count
            old = redis.call('HGET', KEYS[9] .. ':' .. home, key)
            if old then seen[home] = (seen[home] or 0) + 1 end
          end
          local op = nil
          if not old then op = 'a' ; c.added = c.added + 1
          else
            c.matched = c.matched + 1
            if old ~= digests[i] then op = 'u' ; c.updated = c.updated + 1 end
          end
          if op then
            changes[#changes + 1] = 0
            changes[#changes + 1] = key .. '\\t' .. op .. '\\t' .. args[2 * i]
          end
        end
      end
    end
    for i = 1, #changes, 1000 do
      redis.call('ZADD', KEYS[8], unpack(changes, i, math.min(i + 999, #changes)))
    end
    for home, matched in pairs(seen) do
      redis.call('HINCRBY', KEYS[7] .. ':seen', home, matched)
    end
    for name, value in pairs(c) do
      if value > 0 then redis.call('HINCRBY', KEYS[1], 'keyed_' .. name, value) end
    end
  end
  redis.call('HINCRBY', KEYS[1], 'keyed_receipts', 1)
end
refresh()
if whole(pages, records) then return 2 end
return 1
"""

# KEYS: meta, index, seq. ARGV: version, pages, records, token, field1, value1, ... (every
# message carries the batch's token, so the batch knows it whatever arrives first).
COMPLETE = FOREIGN + """
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'running' then return status end
if foreign(KEYS[1], KEYS[3], ARGV[1], ARGV[4]) then return 'foreign' end
redis.call('HSET', KEYS[1], 'status', 'running', 'version', ARGV[1],
           'expected_pages', ARGV[2], 'expected_records', ARGV[3])
redis.call('HSETNX', KEYS[1], 'token', ARGV[4])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
return 'running'
"""

# KEYS: meta, rec, pages, current, lock, digests, changes, page changes.
# ARGV: version, now, grace_s, mode, reason, losers, paged, field1, value1, ...
# `paged` "1": the change set is the one the pages staged (`page changes` becomes
# `changes`); else `changes` was staged by the settle step and `page changes` goes.
# The fenced commit. "auto" publishes a running batch that is whole (what is stored, not
# only counted), owns the lease and is newer than the current version; "quarantine" keeps
# such a batch unserved; "manual" publishes a quarantined batch still newer. `losers`
# (members joined by "\n", records a later one of the same key replaced) leave the records
# in this step, and `records_stored` goes down by as many. Verdicts: published,
# quarantined, waiting, staging_expired, superseded, stale, not_<status>.
PUBLISH = BUCKETS + """
local mode = ARGV[4]
local m = redis.call('HMGET', KEYS[1], 'status', 'expected_pages', 'pages_received',
                     'expected_records', 'records_received', 'token', 'records_stored',
                     'receipts')
local expected = 'running'
if mode == 'manual' then expected = 'quarantined' end
if m[1] ~= expected then return 'not_' .. expected end
if mode ~= 'manual' then
  if not m[2] then return 'waiting' end
  if tonumber(m[2]) ~= tonumber(m[3] or '0') or tonumber(m[4]) ~= tonumber(m[5] or '0') then
    return 'waiting'
  end
  -- Staging data that expired meanwhile (fewer receipts or records) can never publish.
  if redis.call('HLEN', KEYS[3]) ~= tonumber(m[8] or '0')
      or redis.call('ZCARD', KEYS[2]) ~= tonumber(m[7] or '0') then
    return 'staging_expired'
  end
end
local holder = redis.call('GET', KEYS[5])
local mine = (m[6] or '') .. ':' .. ARGV[1]
local current = tonumber(redis.call('GET', KEYS[4]) or '0')
local verdict = nil
if mode ~= 'manual' and holder and holder ~= mine then verdict = 'superseded' end
if current >= tonumber(ARGV[1]) then verdict = 'stale' end
-- An incremental batch was merged onto version `base`: only that one may it replace.
local base = redis.call('HGET', KEYS[1], 'base')
if base and tonumber(base) ~= current then verdict = 'stale' end
if verdict and mode == 'manual' then return verdict end
if verdict then
  redis.call('HSET', KEYS[1], 'status', 'abandoned', 'finished_at', ARGV[2],
             'error', cjson.encode({kind = verdict,
                                    message = 'a newer batch owns the stream'}))
  for i = 2, 8 do if i ~= 4 and i ~= 5 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end end
  each_bucket(KEYS[1], KEYS[6], 'EXPIRE', ARGV[3])
  return verdict
end
-- The records and their change data become permanent in the same step as the pointer,
-- so no crash between two steps can leave a published batch without its change set.
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[8]) == 1 then
  redis.call('RENAME', KEYS[8], KEYS[7])
else
  redis.call('UNLINK', KEYS[8])
end
redis.call('PERSIST', KEYS[2])
redis.call('PERSIST', KEYS[6])
redis.call('PERSIST', KEYS[7])
redis.call('UNLINK', KEYS[3], KEYS[6] .. ':seen')
local losers, removed = {}, 0
for member in string.gmatch(ARGV[6], '[^\\n]+') do
  losers[#losers + 1] = member
  if #losers == 1000 then
    removed = removed + redis.call('ZREM', KEYS[2], unpack(losers))
    losers = {}
  end
end
if #losers > 0 then removed = removed + redis.call('ZREM', KEYS[2], unpack(losers)) end
if removed > 0 then redis.call('HINCRBY', KEYS[1], 'records_stored', -removed) end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if holder == mine then redis.call('DEL', KEYS[5]) end
if mode == 'quarantine' then
  redis.call('HSET', KEYS[1], 'status', 'quarantined', 'finished_at', ARGV[2],
             'records', redis.call('ZCARD', KEYS[2]), 'quarantine_reason', ARGV[5])
  return 'quarantined'
end
redis.call('SET', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'complete', 'published_at', ARGV[2],
           'records', redis.call('ZCARD', KEYS[2]), 'previous', current)
if mode ~= 'manual' then redis.call('HSET', KEYS[1], 'finished_at', ARGV[2]) end
return 'published'
"""

# KEYS: meta, rec, pages, lock, index, seq, deliveries, digests, changes, page changes.
# ARGV: version, status, now, error_json, token ('' from data-streams itself),
# required_status.
# Ends a batch that will never be published (running, or quarantined and discarded): its
# records and staging go at once, before anything is written, so this works when Redis
# refuses writes for memory (a script may write once it has freed memory).
FINISH_UNPUBLISHED = FOREIGN + BUCKETS + """
local m = redis.call('HMGET', KEYS[1], 'status', 'token')
if m[1] and m[1] ~= ARGV[6] then return m[1] end
if not m[1] and ARGV[6] ~= 'running' then return 'missing' end
if foreign(KEYS[1], KEYS[6], ARGV[1], ARGV[5]) then return 'foreign' end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
each_bucket(KEYS[1], KEYS[8], 'UNLINK')
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'version', ARGV[1], 'finished_at', ARGV[3],
           'error', ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[1], ARGV[1])
if m[2] and redis.call('GET', KEYS[4]) == m[2] .. ':' .. ARGV[1] then
  redis.call('DEL', KEYS[4])
end
return ARGV[2]
"""

# KEYS: definition, meta, rec, current. ARGV: version, first rank, last rank,
# "1" for descending, "1" to require that `version` is still the current one.
# One page of a version and all that decides whether it may be served, in one atomic step
# (no expiry between check and read); a wrong guess of the current version: "moved".
# Returns {defined, status, records announced, ZCARD (0: the zset is gone), members}.
READ_PAGE = """
if ARGV[5] == '1' then
  local current = redis.call('GET', KEYS[4])
  if current ~= ARGV[1] then
    return {'moved', current or '', redis.call('EXISTS', KEYS[1])}
  end
end
local m = redis.call('HMGET', KEYS[2], 'status', 'records')
local members
if ARGV[4] == '1' then
  members = redis.call('ZREVRANGE', KEYS[3], ARGV[2], ARGV[3])
else
  members = redis.call('ZRANGE', KEYS[3], ARGV[2], ARGV[3])
end
return {redis.call('EXISTS', KEYS[1]), m[1] or '', m[2] or '0', redis.call('ZCARD', KEYS[3]),
        members}
"""

# KEYS: meta, current, digests, changes. ARGV: version.
# The consumer that loses a settle race may write its (identical) change data, with the
# staging TTL, after the winner made it permanent; it then calls this, so the change data
# of a batch still published (or quarantined and publishable) is permanent again.
KEEP_CHANGE_DATA = """
local status = redis.call('HGET', KEYS[1], 'status')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local version = tonumber(ARGV[1])
if (status == 'complete' and current == version)
    or (status == 'quarantined' and current < version) then
  redis.call('PERSIST', KEYS[3])
  redis.call('PERSIST', KEYS[4])
  return 1
end
return 0
"""

# KEYS: lock, seq, receipt; meta, rec, pages of the last version handed out; index;
# deliveries, digests, changes of that version; current; page changes of that version.
# ARGV: token, lease_ms, receipt_ttl_ms, last version handed out (as the caller read it),
# now, error_json.
# Takes the lease ("<token>:<version>", short PX the running batch renews) and the next
# version in one step, at most once per fetch message (its receipt). A stream free while
# its last batch still runs (or never began) means that batch's lease lapsed: its worker
# was lost, so it ends `abandoned` here, atomically, its staging freed at once. The next
# version is also above the current one and the history's newest: a failover that lost
# INCRs of seq (but not the batches they began) must never hand out a number again.
# Returns -1 (this message already started a batch), false (a batch holds the lease),
# -2 (the sequence moved since the caller read it: read again), or {version, abandoned}.
ACQUIRE_LEASE = BUCKETS + """
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local last = tonumber(ARGV[4])
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= last then return -2 end
local abandoned = 0
local status = redis.call('HGET', KEYS[4], 'status')
if last > 0 and (not status or status == 'running') then
  redis.call('UNLINK', KEYS[5], KEYS[6], KEYS[8], KEYS[9], KEYS[10], KEYS[12])
  each_bucket(KEYS[4], KEYS[9], 'UNLINK')
  redis.call('HSET', KEYS[4], 'status', 'abandoned', 'version', last, 'finished_at', ARGV[5],
             'error', ARGV[6])
  redis.call('ZADD', KEYS[7], last, last)
  abandoned = last
end
local version = redis.call('INCR', KEYS[2])
local newest = redis.call('ZREVRANGE', KEYS[7], 0, 0)[1]
local floor = math.max(tonumber(redis.call('GET', KEYS[11]) or '0'), tonumber(newest or '0'))
if version <= floor then
  version = floor + 1
  redis.call('SET', KEYS[2], version)
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. version, 'PX', ARGV[2])
redis.call('SET', KEYS[3], version, 'PX', ARGV[3])
return {version, abandoned}
"""

# KEYS: lock. ARGV: lease value, lease_ms. Renews the lease if it is still this batch's.
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock. ARGV: lease value. Drops the lease if it is still this batch's.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# --- Incremental batches (app.store.incremental, app.store.recindex) --------------------
# Every step below first checks that the batch is still running, so a consumer that lost
# the race to settle never touches a version another one published.

# KEYS: meta, rec, ups, pages. ARGV: staging_ttl_ms.
# Sets the staged changes aside (rec -> ups) once, so `rec` can become the whole version;
# `records_stored` restarts at 0 and counts what the merge adds. Returns the merge phase,
# or "staging_expired" when what is stored falls short of what was counted (as PUBLISH).
MERGE_BEGIN = """
local m = redis.call('HMGET', KEYS[1], 'status', 'merge', 'records_stored', 'expected_pages')
if m[1] ~= 'running' then return 'not_running' end
if m[2] then return m[2] end
if redis.call('ZCARD', KEYS[2]) ~= tonumber(m[3] or '0')
    or redis.call('HLEN', KEYS[4]) ~= tonumber(m[4] or '0') then
  return 'staging_expired'
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
redis.call('HSET', KEYS[1], 'merge', 'copying', 'merge_at', 0, 'records_stored', 0)
return 'copying'
"""

# KEYS: meta, base rec, rec, lock. ARGV: chunk, staging_ttl_ms, version, lock_ttl_ms,
# base_records. Copies the next `chunk` members of the base version into `rec`; the
# position is shared, so several consumers copy together and the copy ends once. Returns
# -1 (not running), -2 (copy finished), -3 (the base version is gone) or the position.
MERGE_COPY = """
local m = redis.call('HMGET', KEYS[1], 'status', 'merge', 'merge_at', 'token')
if m[1] ~= 'running' then return -1 end
if m[2] ~= 'copying' then return -2 end
local total = redis.call('ZCARD', KEYS[2])
if total ~= tonumber(ARGV[5]) then return -3 end
local at = tonumber(m[3] or '0')
local items = redis.call('ZRANGE', KEYS[2], at, at + tonumber(ARGV[1]) - 1, 'WITHSCORES')
local args = {}
for i = 1, #items, 2 do
  args[i] = items[i + 1]
  args[i + 1] = items[i]
end
local added = 0
for i = 1, #args, 4000 do  -- within Lua's stack: unpack() of up to 4,000 values
  added = added + redis.call('ZADD', KEYS[3], unpack(args, i, math.min(i + 3999, #args)))
end
at = at + #items / 2
redis.call('HSET', KEYS[1], 'merge_at', at)
redis.call('HINCRBY', KEYS[1], 'records_stored', added)
if at >= total then redis.call('HSET', KEYS[1], 'merge', 'fixing') end
if #args > 0 then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
if redis.call('GET', KEYS[4]) == (m[4] or '') .. ':' .. ARGV[3] then
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return at
"""

# KEYS: meta, rec. ARGV: staging_ttl_ms, n_remove, member1..member_n, score, member, ...
# Removes the old members of changed keys and adds their new ones (after the copy).
# Idempotent: a second consumer removes and adds nothing more. Returns -1 or 1.
MERGE_FIX = """
local m = redis.call('HMGET', KEYS[1], 'status', 'merge')
if m[1] ~= 'running' then return -1 end
if m[2] ~= 'fixing' then return redis.error_reply('merge fix before the copy ended') end
local n = tonumber(ARGV[2])
local removed, added = 0, 0
for i = 3, n + 2, 1000 do
  removed = removed + redis.call('ZREM', KEYS[2], unpack(ARGV, i, math.min(i + 999, n + 2)))
end
for i = n + 3, #ARGV, 1000 do
  added = added + redis.call('ZADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HINCRBY', KEYS[1], 'records_stored', added - removed)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"""

# KEYS: meta, changes. ARGV: staging_ttl_ms, member1, ... Adds change-set members (score 0).
MERGE_CHANGES = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return -1 end
for i = 2, #ARGV, 500 do
  local args = {}
  for j = i, math.min(i + 499, #ARGV) do
    args[#args + 1] = 0
    args[#args + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[2], unpack(args))
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"""

# KEYS: index. ARGV: from_version, to_version, last ("1"), n_set, field, value, ...,
# field_to_delete, ... Moves the record index from one version to the next, in chunks:
# the field "" names the version it describes ("<v>:patching" between chunks), so an
# index that a crash left half-moved is never taken for whole. Returns 1, or 0 when the
# index describes neither version (it will be rebuilt when needed).
INDEX_PATCH = """
local mark = redis.call('HGET', KEYS[1], '')
if mark ~= ARGV[1] and mark ~= ARGV[2] .. ':patching' then return 0 end
redis.call('HSET', KEYS[1], '', ARGV[2] .. ':patching')
local n = tonumber(ARGV[4])
for i = 5, 4 + 2 * n, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, 4 + 2 * n)))
end
for i = 5 + 2 * n, #ARGV, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], '', ARGV[2]) end
return 1
"""

# KEYS: rebuilt index, index. ARGV: version.
# Installs a rebuilt index unless the live one already describes a newer version.
INDEX_INSTALL = """
local mark = redis.call('HGET', KEYS[2], '') or '0'
if tonumber(string.match(mark, '^%d+') or '0') > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PERSIST', KEYS[2])
return 1
"""


# --- Change sets staged by the pages (app.store.pagediff) --------------------------------

# KEYS: meta, base digests, digests, page changes. ARGV: first bucket, last bucket (of the
# base's), bucket count of the base, of the batch, staging_ttl_ms.
# Counts are powers of two, so a key of base bucket i is in batch bucket i % count when
# the batch has fewer buckets, else in one of the buckets i + m * base count (the one its
# SHA-1 names, where Lua has redis.sha1hex).
# Finds the removed keys in base buckets first..last: a bucket holding more keys than the
# batch matched in it (`seen`) holds some, and each of its keys that the batch does not
# hold becomes a "k<TAB>r<TAB>" member of the page changes (idempotent, so two consumers
# may walk at once). Returns how many it staged, or -1 when the batch no longer runs.
REMOVED_SCAN = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return -1 end
local base_count, count, found = tonumber(ARGV[3]), tonumber(ARGV[4]), {}
local sha1 = redis.sha1hex
local function gone(i, key)
  if sha1 then
    local j = tonumber(string.sub(sha1(key), 1, 7), 16) % count
    return redis.call('HEXISTS', KEYS[3] .. ':' .. j, key) == 0
  end
  for j = i, count - 1, base_count do
    if redis.call('HEXISTS', KEYS[3] .. ':' .. j, key) == 1 then return false end
  end
  return true
end
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local wanted = {}
for i = first, last do wanted[#wanted + 1] = i end
local seen = redis.call('HMGET', KEYS[3] .. ':seen', unpack(wanted))
for i = first, last do
  local bucket = KEYS[2] .. ':' .. i
  local size = redis.call('HLEN', bucket)
  if size > 0 and size ~= tonumber(seen[i - first + 1] or '0') then
    local keys = redis.call('HKEYS', bucket)
    if count <= base_count then  -- the whole base bucket lies in one batch bucket
      for first = 1, #keys, 1000 do  -- unpack() stays within Lua's stack
        local last = math.min(first + 999, #keys)
        local held = redis.call('HMGET', KEYS[3] .. ':' .. (i % count),
                                unpack(keys, first, last))
        for k = first, last do
          if not held[k - first + 1] then
            found[#found + 1] = 0
            found[#found + 1] = keys[k] .. '\\tr\\t'
          end
        end
      end
    else
      for _, key in ipairs(keys) do
        if gone(i, key) then
          found[#found + 1] = 0
          found[#found + 1] = key .. '\\tr\\t'
        end
      end
    end
  end
end
for i = 1, #found, 1000 do
  redis.call('ZADD', KEYS[4], unpack(found, i, math.min(i + 999, #found)))
end
if #found > 0 then redis.call('PEXPIRE', KEYS[4], ARGV[5]) end
return #found / 2
"""

# KEYS: meta, digests (the version's bucket prefix). ARGV: grace_s.
# Gives every digest bucket of a version no longer current the grace period, once.
RETIRE_DIGESTS = BUCKETS + """
if redis.call('HGET', KEYS[1], 'dig_retired') then return 0 end
each_bucket(KEYS[1], KEYS[2], 'EXPIRE', ARGV[1])
redis.call('HSET', KEYS[1], 'dig_retired', 1)
return 1
"""
