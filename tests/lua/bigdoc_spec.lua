-- A 64 MiB document written from a function and read back through
-- :read(65536) in a loop, with bounded Lua heap and process RSS.
--
-- The core reads the main file through mmap by default (use_mmap = 1):
-- pages of a mapped file count in VmRSS as RssFile (page cache the kernel
-- can drop, not memory the process owns).  So the read is measured twice:
-- with use_mmap = false, where VmRSS itself must stay bounded, and with the
-- default, where the private memory (RssAnon) must.
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*)/") or ".") .. "/helper.lua")
local streamdb = H.streamdb

local MiB = 1024 * 1024
local SIZE = 64 * MiB
local CHUNK = 65536

-- chunk i (0-based) of the document: 64 KiB that name their own index, so a
-- chunk read at the wrong offset or twice is detected.
local block = H.bytes(CHUNK - 16, 2024)
local function chunk(i)
  return ("%016x"):format(i) .. block
end

-- Reads the document with s:read(CHUNK), checking every chunk; returns the
-- maximum growth of the Lua heap and of the given /proc/self/status fields,
-- in MiB.
local function read_all_measured(db, fields)
  collectgarbage(); collectgarbage()
  local heap0 = collectgarbage("count")            -- KiB
  local base, peak = {}, {}
  for _, f in ipairs(fields) do base[f] = H.proc_status(f); peak[f] = base[f] end
  local heap_max = heap0
  local s <close> = assert(db:open("/big/64mib.bin"))
  local n, total = 0, 0
  while true do
    local data = s:read(CHUNK)
    if data == nil then break end
    assert(#data == CHUNK, "short chunk")
    if data ~= chunk(n) then error(("chunk %d differs"):format(n)) end
    n = n + 1
    total = total + #data
    if n % 16 == 0 then
      heap_max = math.max(heap_max, collectgarbage("count"))
      for _, f in ipairs(fields) do peak[f] = math.max(peak[f], H.proc_status(f)) end
    end
  end
  assert.equal(SIZE, total)
  assert.equal(SIZE // CHUNK, n)
  assert.is_nil(s:read(CHUNK))
  local growth = { heap = (heap_max - heap0) / 1024 }
  for _, f in ipairs(fields) do growth[f] = (peak[f] - base[f]) / 1024 end
  return growth
end

describe("a 64 MiB document", function()
  local path
  setup(function()
    local db
    db, path = H.fresh()
    local i = 0
    local id = db:write_document("/big/64mib.bin", function()
      if i * CHUNK >= SIZE then return nil end
      i = i + 1
      return chunk(i - 1)
    end)
    assert(id, "write failed")
    assert(db:close())
  end)
  teardown(H.cleanup)

  it("streams through read(65536) with bounded heap and RSS (no mmap)", function()
    local db <close> = assert(streamdb.open(path, { use_mmap = false }))
    assert.equal(SIZE, db:stat("/big/64mib.bin").size)
    local g = read_all_measured(db, { "VmRSS", "RssAnon" })
    print(("\n64 MiB read, use_mmap=false: Lua heap +%.1f MiB, VmRSS +%.1f MiB, RssAnon +%.1f MiB (peaks)")
      :format(g.heap, g.VmRSS, g.RssAnon))
    -- the whole document is 64 MiB: memory must stay far below it
    assert.is_true(g.heap < 16, ("Lua heap grew by %.1f MiB"):format(g.heap))
    assert.is_true(g.VmRSS < 32, ("VmRSS grew by %.1f MiB"):format(g.VmRSS))
  end)

  it("streams through read(65536) with bounded private memory (default, mmap)", function()
    local db <close> = assert(streamdb.open(path))
    local g = read_all_measured(db, { "VmRSS", "RssAnon" })
    print(("\n64 MiB read, default (mmap): Lua heap +%.1f MiB, VmRSS +%.1f MiB, RssAnon +%.1f MiB (peaks)")
      :format(g.heap, g.VmRSS, g.RssAnon))
    assert.is_true(g.heap < 16, ("Lua heap grew by %.1f MiB"):format(g.heap))
    assert.is_true(g.RssAnon < 32, ("RssAnon grew by %.1f MiB"):format(g.RssAnon))
  end)

  it("chunks() over it stays bounded too", function()
    local db <close> = assert(streamdb.open(path, { use_mmap = false }))
    collectgarbage(); collectgarbage()
    local rss0 = H.proc_status("VmRSS")
    local rss_max, n = rss0, 0
    for data in db:chunks("/big/64mib.bin") do
      if data ~= chunk(n) then error(("chunk %d differs"):format(n)) end
      n = n + 1
      if n % 16 == 0 then rss_max = math.max(rss_max, H.proc_status("VmRSS")) end
    end
    assert.equal(SIZE // CHUNK, n)
    assert.is_true((rss_max - rss0) / 1024 < 32)
  end)
end)
