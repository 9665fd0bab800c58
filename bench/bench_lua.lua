-- Workload (h), Lua side: 1 KiB point reads through the streamdb Lua module.
-- No LMDB or SQLite binding for Lua 5.4 is packaged by Debian here, so the
-- reference is a plain Lua table lookup of the same strings (the floor of any
-- binding's per-call cost).
--
--   LUA_CPATH_5_4="BUILD/lua/?.so;;" lua5.4 bench/bench_lua.lua [docs] [reads] [dir]
local ok, streamdb = pcall(require, "streamdb")
if not ok then
  print("streamdb_bench (h, Lua): skipped: the streamdb Lua module is not built (" .. tostring(streamdb) .. ")")
  return
end

local ndocs = tonumber(arg[1]) or 10000
local nreads = tonumber(arg[2]) or 200000
local dir = arg[3] or os.tmpname() .. ".d"
os.execute("mkdir -p '" .. dir .. "'")
local block = 1000

math.randomseed(42)
local function randbytes(n)
  local t = {}
  for i = 1, n // 8 do t[i] = string.pack("<i8", math.random(math.mininteger, math.maxinteger)) end
  return table.concat(t)
end

local db = assert(streamdb.open(dir .. "/lua.sdb"))
local paths, data, tbl = {}, {}, {}
for i = 0, ndocs - 1 do
  paths[i + 1] = string.format("/game/level%03d/asset%06d", i // 1000, i)
  data[i + 1] = randbytes(1024)
  tbl[paths[i + 1]] = data[i + 1]
end
assert(db:begin())
for i = 1, ndocs do assert(db:write_document(paths[i], data[i])) end
assert(db:commit())
for _ = 1, 100 do
  local i = math.random(ndocs)
  assert(db:get(paths[i]) == data[i], "streamdb returned wrong data")
end
local keys = {}
for i = 1, nreads do keys[i] = paths[math.random(ndocs)] end

local clock = os.clock   -- CPU time: the loop is CPU-bound and single-threaded
local function run(fn)
  fn(1, nreads)          -- warm
  local per = {}
  local t0 = clock()
  for s = 1, nreads, block do
    local b0 = clock()
    fn(s, math.min(nreads, s + block - 1))
    per[#per + 1] = (clock() - b0) * 1e9 / block
  end
  local total = clock() - t0
  table.sort(per)
  return per[(#per + 1) // 2], per[math.max(1, math.ceil(#per * 0.99))], nreads / total
end

local get = db.get
local sm, sp, so = run(function(a, b) for i = a, b do get(db, keys[i]) end end)
local tm, tp, to = run(function(a, b) local x for i = a, b do x = tbl[keys[i]] end return x end)
print(string.format("streamdb_bench (h, Lua %s): %d x 1 KiB docs, %d random warm reads, blocks of %d",
  _VERSION, ndocs, nreads, block))
print(string.format("%-26s %12s %12s %12s", "system", "median ns", "p99 ns", "ops/s"))
print(string.format("%-26s %12.0f %12.0f %12.0f", "streamdb db:get", sm, sp, so))
print(string.format("%-26s %12.0f %12.0f %12.0f", "Lua table lookup (floor)", tm, tp, to))
print("(per-call figures from os.clock, CPU time, block means)")
db:close()
os.execute("rm -rf '" .. dir .. "'")
