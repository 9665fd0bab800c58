-- Streams behave like Lua file handles; chunks iterate a document.
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*)/") or ".") .. "/helper.lua")
local E = H.E

describe("streams", function()
  local db
  setup(function() db = H.fresh() end)
  teardown(function() db:close(); H.cleanup() end)

  it("reads counts, all, and end of file like io", function()
    db:write_document("/s/abc", "abcdefghij")
    local s = assert(db:open("/s/abc"))
    assert.matches("^streamdb.stream %(", tostring(s))
    assert.equal(10, s:size())
    assert.equal("abc", s:read(3))
    assert.equal("", s:read(0))        -- not at the end
    assert.equal("defghij", s:read(100))
    assert.is_nil(s:read(1))
    assert.is_nil(s:read(0))           -- at the end
    assert.equal("", s:read("a"))      -- "a" never fails
    assert.is_nil(s:read("l"))
    assert.is_true(s:close())
    assert.equal("streamdb.stream (closed)", tostring(s))
  end)

  it("reads lines with and without the newline, and several formats", function()
    db:write_document("/s/lines", "alpha\nbeta\n\ngamma")
    local s = db:open("/s/lines")
    assert.equal("alpha", s:read())          -- default "l"
    assert.equal("beta\n", s:read("L"))
    assert.equal("", s:read("*l"))           -- 5.1-style prefix accepted
    assert.equal("gamma", s:read("l"))
    assert.is_nil(s:read("l"))
    s:seek("set")
    local a, b, c, d = s:read(2, "l", "L", "a")
    assert.equal("al", a)
    assert.equal("pha", b)
    assert.equal("beta\n", c)
    assert.equal("\ngamma", d)
    s:seek("set", 6)
    -- results stop at the first failure
    local r = table.pack(s:read("l", "l", "l", "l", "l"))
    assert.equal(4, r.n)
    assert.same({ "beta", "", "gamma" }, { r[1], r[2], r[3] })
    assert.is_nil(r[4])
    assert.has_error(function() s:read("x") end)
    assert.has_error(function() s:read(-1) end)
    assert.has_error(function() s:read({}) end)
    s:close()
  end)

  it("reads numbers with format n", function()
    db:write_document("/s/num", "  42 3.5\n-7 0x10 1e3 zz")
    local s = db:open("/s/num")
    assert.equal(42, s:read("n"))
    assert.is_true(math.type(s:read("n")) == "float")
    local a, b, c = s:read("n", "n", "n")
    assert.equal(-7, a); assert.equal(16, b); assert.equal(1000.0, c)
    assert.is_nil(s:read("n"))
    s:close()
  end)

  it("iterates lines(...) without closing the stream", function()
    local lines = {}
    for i = 1, 500 do lines[i] = ("line %d %s"):format(i, string.rep("x", i % 70)) end
    -- plus lines longer than the stream buffer
    lines[#lines + 1] = string.rep("L", 40000)
    lines[#lines + 1] = "tail"
    local text = table.concat(lines, "\n")
    db:write_document("/s/many", text)
    local s <close> = db:open("/s/many")
    local got = {}
    for l in s:lines() do got[#got + 1] = l end
    assert.same(lines, got)
    assert.is_nil(s:read(1))
    s:seek("set")
    local n = 0
    for l in s:lines("L") do
      n = n + 1
      if n < #lines then assert.equal(lines[n] .. "\n", l) end
    end
    assert.equal(#lines, n)
    s:seek("set")
    local pairs_seen = 0
    for a, b in s:lines(4, 2) do
      pairs_seen = pairs_seen + 1
      if pairs_seen == 1 then assert.equal("line", a); assert.equal(" 1", b) end
    end
    assert.is_true(pairs_seen > 0)
    assert.matches("^streamdb.stream %(", tostring(s))   -- still open
  end)

  it("seeks like io", function()
    local content = H.bytes(100000, 5)
    db:write_document("/s/seek", content)
    local s = db:open("/s/seek")
    assert.equal(0, s:seek())
    assert.equal(content:sub(1, 10), s:read(10))
    assert.equal(10, s:seek())
    assert.equal(10, s:seek("cur"))
    assert.equal(5, s:seek("cur", -5))
    assert.equal(content:sub(6, 8), s:read(3))
    assert.equal(#content, s:seek("end"))
    assert.is_nil(s:read(1))
    assert.equal(#content - 4, s:seek("end", -4))
    assert.equal(content:sub(-4), s:read("a"))
    assert.equal(70000, s:seek("set", 70000))
    assert.equal(content:sub(70001, 70100), s:read(100))
    assert.equal(3, s:seek("set", 3))
    assert.equal(content:sub(4, 20003), s:read(20000))
    -- backwards across buffered data
    assert.equal(19990, s:seek("cur", -13))
    assert.equal(content:sub(19991, 20010), s:read(20))
    local v, msg, code = s:seek("set", -1)
    assert.is_nil(v); assert.is_string(msg); assert.equal(E.INVALID, code)
    assert.equal(20010, s:seek())           -- unchanged by the failed seek
    assert.has_error(function() s:seek("sideways") end)
    s:close()
  end)

  it("reads the version it opened, whatever is written later", function()
    db:write_document("/s/ver", "first version")
    local s = db:open("/s/ver")
    db:write_document("/s/ver", "second version, longer")
    assert.equal("first version", s:read("a"))
    s:close()
    s = db:open("/s/ver")
    assert.equal("second version, longer", s:read("a"))
    s:close()
  end)

  it("closes with <close>, also when an error is raised", function()
    db:write_document("/s/c", "closing")
    local base = db:stats().live_readers
    local kept
    local ok, err = pcall(function()
      local s <close> = assert(db:open("/s/c"))
      kept = s
      assert.equal(base + 1, db:stats().live_readers)
      error("raised inside the block")
    end)
    assert.is_false(ok)
    assert.matches("raised inside the block", err)
    assert.equal("streamdb.stream (closed)", tostring(kept))
    assert.equal(base, db:stats().live_readers)
    local v, msg, code = kept:read(1)
    assert.is_nil(v); assert.matches("closed", msg); assert.equal(E.CLOSED, code)
    assert.is_true(kept:close())   -- idempotent
    do
      local s <close> = db:open("/s/c")
      assert.equal("clo", s:read(3))
    end
    assert.equal(base, db:stats().live_readers)
  end)

  it("is released by the garbage collector", function()
    db:write_document("/s/gc", "garbage")
    local base = db:stats().live_readers
    local t = {}
    for i = 1, 50 do t[i] = db:open("/s/gc") end
    assert.equal(base + 50, db:stats().live_readers)
    t = nil
    collectgarbage(); collectgarbage()
    assert.equal(base, db:stats().live_readers)
  end)

  it("looks like a read-only file", function()
    db:write_document("/s/ro", "x")
    local s = db:open("/s/ro")
    local v, msg, code = s:write("y")
    assert.is_nil(v); assert.equal(E.READONLY, code)
    assert.equal(s, s:flush())
    assert.is_true(s:setvbuf("no"))
    s:close()
    v, msg, code = s:read("a")
    assert.is_nil(v); assert.equal(E.CLOSED, code)
    assert.has_error(function() for _ in s:lines() do end end, "attempt to use a closed stream")
  end)

  it("opens an earlier version", function()
    local db2 = H.fresh()
    db2:write_document("/v", "v1")
    db2:write_document("/v", "v2")
    local s = db2:open("/v", -1)
    assert.equal("v1", s:read("a"))
    s:close()
    local v, msg, code = db2:open("/v", 99)
    assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
    db2:close()
  end)
end)

describe("chunks", function()
  local db
  setup(function() db = H.fresh() end)
  teardown(function() db:close(); H.cleanup() end)

  it("iterates a document in chunks of a given size", function()
    local content = H.bytes(2500, 1)
    db:write_document("/c/doc", content)
    local sizes, parts = {}, {}
    for chunk in db:chunks("/c/doc", 1000) do
      sizes[#sizes + 1] = #chunk
      parts[#parts + 1] = chunk
    end
    assert.same({ 1000, 1000, 500 }, sizes)
    assert.equal(content, table.concat(parts))
    -- default size is 64 KiB
    local big = H.bytes(200000, 2)
    db:write_document("/c/big", big)
    sizes, parts = {}, {}
    for chunk in db:chunks("/c/big") do
      sizes[#sizes + 1] = #chunk
      parts[#parts + 1] = chunk
    end
    assert.same({ 65536, 65536, 65536, 200000 - 3 * 65536 }, sizes)
    assert.equal(big, table.concat(parts))
    -- an empty document has no chunks
    db:write_document("/c/empty", "")
    for _ in db:chunks("/c/empty") do error("no chunk expected") end
  end)

  it("releases its stream on break and at the end", function()
    db:write_document("/c/b", string.rep("z", 10000))
    local base = db:stats().live_readers
    for chunk in db:chunks("/c/b", 100) do
      assert.equal(string.rep("z", 100), chunk)
      assert.equal(base + 1, db:stats().live_readers)
      break
    end
    assert.equal(base, db:stats().live_readers)
    local n = 0
    for _ in db:chunks("/c/b", 3000) do n = n + 1 end
    assert.equal(4, n)
    assert.equal(base, db:stats().live_readers)
  end)

  it("raises for a missing document (the for loop has no room for nil, message)", function()
    assert.has_error(function() for _ in db:chunks("/c/none") do end end)
    local ok, err = pcall(function() for _ in db:chunks("/c/none") do end end)
    assert.matches("chunks:", err)
  end)
end)
