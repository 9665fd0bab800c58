-- close(): idempotent, run by __close and __gc, invalidates every child;
-- use after close returns errors and never crashes.
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*)/") or ".") .. "/helper.lua")
local streamdb, E = H.streamdb, H.E

describe("lifetimes", function()
  teardown(H.cleanup)

  it("close is idempotent and methods fail with CLOSED afterwards", function()
    local db = H.fresh()
    local id = db:write_document("/x", "data")
    assert.is_true(db:is_open())
    assert.is_true(db:close())
    assert.is_true(db:close())
    assert.is_false(db:is_open())
    assert.equal("streamdb.db (closed)", tostring(db))
    local calls = {
      { "get", "/x" }, { "write_document", "/x", "y" }, { "write_document", "/x", function() end },
      { "open", "/x" }, { "stat", "/x" }, { "versions", "/x" }, { "search", "/" },
      { "list", "/" }, { "count" }, { "get_by_id", id }, { "get_id_by_path", "/x" },
      { "bind_to_path", id, "/y" }, { "unbind_path", id, "/x" }, { "list_paths", id },
      { "delete", "/x" }, { "delete_by_id", id }, { "begin" }, { "commit" }, { "rollback" },
      { "snapshot" }, { "flush" }, { "check" }, { "stats" }, { "cache_stats" },
      { "set_quick_mode", true }, { "read", "/x", 0, 1 }, { "get_async", "/x" },
      { "cursor", "/" }, { "transaction", function() error("must not run") end },
    }
    for _, c in ipairs(calls) do
      local v, msg, code = db[c[1]](db, table.unpack(c, 2))
      assert.is_nil(v, c[1])
      assert.is_string(msg, c[1])
      assert.equal(E.CLOSED, code, c[1])
    end
    assert.has_error(function() for _ in db:paths("/") do end end)
    assert.has_error(function() for _ in db:chunks("/x") do end end)
  end)

  it("closes open streams, cursors and iterators first, which then fail", function()
    local db = H.fresh()
    for i = 1, 5 do db:write_document("/d/" .. i, ("line %d\n"):format(i):rep(100)) end
    local s = db:open("/d/1")
    local lines = s:lines()
    assert.equal("line 1", lines())
    local c = db:cursor("/d/")
    assert.equal("/d/1", c:next())
    local iter, state, ctl, closing = db:paths("/d/")
    assert.equal("/d/1", iter(state, ctl))
    local citer, cstate = db:chunks("/d/2", 10)
    assert.equal("line 2\nlin", citer(cstate))
    local snap = db:snapshot()
    local snap_stream = snap:open("/d/3")

    assert.is_true(db:close())          -- not BUSY: children closed first

    local v, msg, code = s:read("l")
    assert.is_nil(v); assert.equal(E.CLOSED, code)
    assert.matches("database is closed", msg)
    v, msg, code = s:seek("set", 0)
    assert.is_nil(v); assert.equal(E.CLOSED, code)
    v, msg, code = s:size()
    assert.is_nil(v); assert.equal(E.CLOSED, code)
    assert.has_error(function() lines() end, "stream invalidated: its database is closed")
    v, msg, code = c:next()
    assert.is_nil(v); assert.equal(E.CLOSED, code)
    assert.has_error(function() iter(state, ctl) end, "cursor invalidated: its database is closed")
    assert.has_error(function() citer(cstate) end)
    v, msg, code = snap:get("/d/1")
    assert.is_nil(v); assert.equal(E.CLOSED, code)
    v, msg, code = snap_stream:read(1)
    assert.is_nil(v); assert.equal(E.CLOSED, code)
    -- closing the children again is harmless
    assert.is_true(s:close())
    assert.is_true(c:close())
    assert.is_true(snap:close())
    assert.is_true(snap_stream:close())
    assert.equal("streamdb.cursor (closed)", tostring(closing))
  end)

  it("closes the database from inside a data function without crashing", function()
    local db = H.fresh()
    local n = 0
    local v, msg, code = db:write_document("/w", function()
      n = n + 1
      if n == 2 then db:close() end
      if n < 5 then return "chunk" end
    end)
    assert.is_nil(v)
    assert.equal(E.CLOSED, code)
    assert.is_string(msg)
  end)

  it("closes the database from inside a transaction function without crashing", function()
    local db = H.fresh()
    local v, msg, code = db:transaction(function()
      db:write_document("/t", "x")
      db:close()
    end)
    assert.is_nil(v); assert.equal(E.CLOSED, code); assert.is_string(msg)
    local db2 = H.fresh()
    local ok, err = pcall(db2.transaction, db2, function()
      db2:close()
      error("after close")
    end)
    assert.is_false(ok); assert.matches("after close", err)
    assert.equal("streamdb.db (closed)", tostring(db2))
  end)

  it("closes with <close>, also when an error is raised, and the data is durable", function()
    local path = H.tmpdir() .. "/close.sdb"
    local kept
    local ok, err = pcall(function()
      local db <close> = assert(streamdb.open(path))
      kept = db
      db:write_document("/kept", "committed before the error")
      local s <close> = db:open("/kept")
      error("boom")
    end)
    assert.is_false(ok)
    assert.matches("boom", err)
    assert.equal("streamdb.db (closed)", tostring(kept))
    local db = assert(streamdb.open(path))   -- the lock was released
    assert.equal("committed before the error", db:get("/kept"))
    db:close()
  end)

  it("closes through __gc, releasing the file lock", function()
    local path = H.tmpdir() .. "/gc.sdb"
    do
      local db = assert(streamdb.open(path))
      db:write_document("/g", "gc")
      local s = db:open("/g")   -- a child left open
      local _ = s
    end
    collectgarbage(); collectgarbage()
    -- another process can take the lock now
    local ok, rc, out = H.run_lua(([[
      local streamdb = require "streamdb"
      local db = assert(streamdb.open(%q))
      io.write(db:get("/g"))
      db:close()
    ]]):format(path))
    assert.is_true(ok, out)
    assert.equal("gc", out)
  end)

  it("survives lua_close with every kind of object left open", function()
    local path = H.tmpdir() .. "/exit.sdb"
    local ok, rc, out = H.run_lua(([[
      local streamdb = require "streamdb"
      local db = assert(streamdb.open(%q))
      for i = 1, 20 do db:write_document("/e/" .. i, string.rep("e", 100000 + i)) end
      local keep = {}
      keep.s = db:open("/e/1")
      keep.s:read(10)
      keep.c = db:cursor("/e/")
      keep.c:next()
      keep.it = { db:paths("/") }
      keep.snap = db:snapshot()
      keep.snap_s = keep.snap:open("/e/2")
      keep.f = db:get_async("/e/3")
      keep.f2 = keep.snap:get_async("/e/4")
      keep.ch = { db:chunks("/e/5", 7) }
      -- a parent finalised before its children
      local db2 = assert(streamdb.open(%q .. "-2"))
      db2:write_document("/z", "z")
      keep.s2 = db2:open("/z")
      getmetatable(db2).__gc(db2)
      assert(keep.s2:read(1) == nil)
      keep.db2 = db2
      _G.KEEP = keep
      io.write("exiting\n")
      os.exit(0, true)   -- closes the state: every __gc runs
    ]]):format(path, path))
    assert.is_true(ok, out)
    assert.equal("exiting\n", out)
    local db = assert(streamdb.open(path))
    assert.equal(20, db:count())
    assert.equal(string.rep("e", 100007), db:get("/e/7"))
    assert.is_true(db:check())
    db:close()
  end)
  -- T13 (also run under Valgrind by tests/bindings_memcheck.sh) ---------------

  it("every kind of object fails cleanly after its own close", function()
    local db = H.fresh()
    for i = 1, 3 do db:write_document("/o/" .. i, "doc " .. i) end
    local c = db:cursor("/o/")
    assert.equal("/o/1", c:next())
    assert.is_true(c:close()); assert.is_true(c:close())
    local v, msg, code = c:next()
    assert.is_nil(v); assert.is_string(msg); assert.equal(E.CLOSED, code)
    assert.has_error(function() for _ in c do end end)
    assert.equal("streamdb.cursor (closed)", tostring(c))
    local lc = db:list_cursor("/")
    assert.equal("/o/", lc:next())
    lc:close()
    assert.equal(E.CLOSED, select(3, lc:next()))

    local s = db:open("/o/2")
    assert.equal("doc", s:read(3))
    assert.is_true(s:close())
    for _, call in ipairs({ { "read", 1 }, { "read", "a" }, { "read", "l" }, { "seek", "set", 0 },
                            { "size" } }) do
      v, msg, code = s[call[1]](s, table.unpack(call, 2))
      assert.is_nil(v, call[1]); assert.equal(E.CLOSED, code, call[1])
    end
    assert.has_error(function() for _ in s:lines() do end end)

    local snap = db:snapshot()
    local snap_s = snap:open("/o/3")
    local snap_c = snap:cursor("/o/")
    assert.equal("/o/1", snap_c:next())
    assert.is_true(snap:close())
    assert.is_true(snap:close())
    for _, call in ipairs({ { "get", "/o/1" }, { "open", "/o/1" }, { "search", "/" },
                            { "cursor", "/" }, { "stat", "/o/1" }, { "count" },
                            { "read", "/o/1", 0, 1 }, { "get_async", "/o/1" },
                            { "snapshot" } }) do
      v, msg, code = snap[call[1]](snap, table.unpack(call, 2))
      assert.is_nil(v, call[1]); assert.equal(E.CLOSED, code, call[1])
    end
    -- closing the snapshot closed what was opened from it
    assert.equal(E.CLOSED, select(3, snap_s:read(1)))
    assert.equal(E.CLOSED, select(3, snap_c:next()))
    assert.equal(0, db:stats().live_readers)
    -- the database itself is untouched
    assert.same({ "/o/1", "/o/2", "/o/3" }, db:search("/o/"))
    assert.is_true(db:close())
  end)

  it("closes the database from inside paths, entries, chunks and lines loops", function()
    local db, path = H.fresh()
    for i = 1, 50 do db:write_document(("/l/%02d"):format(i), ("line\n"):rep(i)) end
    local function closing_loop(make_iter)
      local n = 0
      local ok, err = pcall(function()
        for _ in make_iter() do
          n = n + 1
          if n == 2 then db:close() end
        end
      end)
      return ok, err, n
    end
    local ok, err, n = closing_loop(function() return db:paths("/l/") end)
    assert.is_false(ok); assert.matches("closed", tostring(err)); assert.equal(2, n)
    db = assert(streamdb.open(path))
    ok, err, n = closing_loop(function() return db:entries("/l/") end)
    assert.is_false(ok); assert.matches("closed", tostring(err)); assert.equal(2, n)
    db = assert(streamdb.open(path))
    ok, err, n = closing_loop(function() return db:chunks("/l/50", 7) end)
    assert.is_false(ok); assert.matches("closed", tostring(err)); assert.equal(2, n)
    db = assert(streamdb.open(path))
    local s = db:open("/l/30")
    ok, err, n = closing_loop(function() return s:lines() end)
    assert.is_false(ok); assert.matches("closed", tostring(err)); assert.equal(2, n)
    -- every loop left the file closed and intact
    db = assert(streamdb.open(path))
    assert.equal(50, db:count())
    assert.equal(("line\n"):rep(50), db:get("/l/50"))
    assert.is_true(db:check())
    assert.is_true(db:close())
  end)

  it("closes cursors and snapshots with <close> when an error is raised", function()
    local db = H.fresh()
    for i = 1, 5 do db:write_document("/c/" .. i, "x") end
    local kept = {}
    local ok, err = pcall(function()
      local c <close> = db:cursor("/c/")
      local snap <close> = db:snapshot()
      local ss <close> = snap:open("/c/1")
      kept.c, kept.snap, kept.ss = c, snap, ss
      assert.equal("/c/1", c:next())
      assert.is_true(db:stats().live_readers >= 2)   -- the cursor and the snapshot
      error("raised with three live readers")
    end)
    assert.is_false(ok); assert.matches("three live readers", err)
    assert.equal(0, db:stats().live_readers)
    assert.equal("streamdb.cursor (closed)", tostring(kept.c))
    assert.equal("streamdb.snapshot (closed)", tostring(kept.snap))
    assert.equal("streamdb.stream (closed)", tostring(kept.ss))
    assert.equal(E.CLOSED, select(3, kept.snap:get("/c/1")))
    assert.is_true(db:close())
  end)

  it("rolls back an open transaction when <close> closes the database on an error", function()
    local path = H.tmpdir() .. "/txn.sdb"
    local db = assert(streamdb.open(path))
    db:write_document("/t", "committed")
    db:close()
    local ok, err = pcall(function()
      local d <close> = assert(streamdb.open(path))
      assert.is_true(d:begin())
      d:write_document("/t", "uncommitted")
      d:write_document("/t2", "uncommitted")
      local s <close> = d:open("/t")
      error("inside the transaction")
    end)
    assert.is_false(ok); assert.matches("inside the transaction", err)
    db = assert(streamdb.open(path))
    assert.equal("committed", db:get("/t"))
    assert.equal(E.NOT_FOUND, select(3, db:get("/t2")))
    assert.is_true(db:close())
  end)

  it("runs <close> of streams held by a coroutine that is closed or collected", function()
    local db = H.fresh()
    db:write_document("/co", ("abc"):rep(1000))
    local seen
    local co = coroutine.create(function()
      local s <close> = assert(db:open("/co"))
      seen = s
      coroutine.yield(s:read(3))
      error("never resumed")
    end)
    local ok, first = coroutine.resume(co)
    assert.is_true(ok); assert.equal("abc", first)
    assert.equal(1, db:stats().live_readers)
    assert.is_true(coroutine.close(co))
    assert.equal("streamdb.stream (closed)", tostring(seen))
    assert.equal(0, db:stats().live_readers)
    -- abandoned mid-read: the collector closes the stream and the cursor
    for _ = 1, 10 do
      local c2 = coroutine.wrap(function()
        local s = db:open("/co")
        local c = db:cursor("/")
        coroutine.yield(s:read(1) .. c:next())
      end)
      assert.equal("a/co", c2())
    end
    collectgarbage(); collectgarbage()
    assert.equal(0, db:stats().live_readers)
    -- a data function cannot yield: the write fails cleanly and the lock is released
    local co2 = coroutine.wrap(function()
      return pcall(db.write_document, db, "/y", function() coroutine.yield("x") end)
    end)
    local pok, perr = co2()
    assert.is_false(pok); assert.matches("yield", tostring(perr))
    assert.equal(E.NOT_FOUND, select(3, db:get("/y")))
    assert.is_string(db:write_document("/y", "after"))
    assert.is_true(db:close())
  end)

  it("raises, never crashes, when a method gets the wrong kind of object", function()
    local db = H.fresh()
    db:write_document("/w", "x")
    local s = db:open("/w")
    local c = db:cursor("/")
    local f = db:get_async("/w")
    local smeth = getmetatable(s).__index
    local cmeth = getmetatable(c).__index
    local dmeth = getmetatable(db).__index
    local fmeth = getmetatable(f).__index
    assert.has_error(function() smeth.read(c, 1) end)
    assert.has_error(function() smeth.seek(db) end)
    assert.has_error(function() cmeth.next(s) end)
    assert.has_error(function() dmeth.get(s, "/w") end)
    assert.has_error(function() dmeth.close(c) end)
    assert.has_error(function() fmeth.wait(db) end)
    assert.has_error(function() getmetatable(s).__gc(c) end)
    assert.has_error(function() getmetatable(db).__close(s) end)
    assert.has_error(function() smeth.read("not userdata") end)
    -- the objects still work
    assert.equal("x", s:read("a"))
    assert.equal("/w", c:next())
    assert.equal("x", f:wait())
    s:close(); c:close()
    assert.is_true(db:close())
  end)
end)
