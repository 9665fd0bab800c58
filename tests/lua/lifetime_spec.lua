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
end)
