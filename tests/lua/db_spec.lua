-- The database object: open, write, get, ids, paths, versions, search,
-- transactions, snapshots, maintenance, and the error conventions.
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*)/") or ".") .. "/helper.lua")
local streamdb, E = H.streamdb, H.E

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function sorted(t)
  table.sort(t)
  return t
end

describe("streamdb module", function()
  teardown(H.cleanup)

  it("has a version and error codes", function()
    assert.equal("0.1.0", streamdb.version())
    assert.equal("streamdb 0.1.0", streamdb._VERSION)
    assert.equal(-2, E.NOT_FOUND)
    assert.equal(-10, E.CLOSED)
    assert.equal(-20, E.CANCELLED)
    assert.equal(-21, E.WOULDBLOCK)
    assert.is_string(streamdb.strerror(E.NOT_FOUND))
    assert.not_equal(streamdb.strerror(E.NOT_FOUND), streamdb.strerror(E.IO))
  end)

  describe("open", function()
    it("returns nil, message, code when the file cannot be created", function()
      local db, msg, code = streamdb.open("/nonexistent-dir-streamdb/x/y.sdb")
      assert.is_nil(db)
      assert.is_string(msg)
      assert.is_true(#msg > 0)
      assert.is_number(code)
      assert.is_true(code < 0)
    end)

    it("does not create a missing file when create = false", function()
      local path = H.tmpdir() .. "/missing.sdb"
      local db, msg, code = streamdb.open(path, { create = false })
      assert.is_nil(db)
      assert.is_string(msg)
      assert.is_true(code < 0)
      assert.is_nil(io.open(path, "rb"))
    end)

    it("rejects a file that is not a database", function()
      local path = H.tmpdir() .. "/junk.sdb"
      local f = assert(io.open(path, "wb"))
      f:write(string.rep("this is not a database\n", 2000))
      f:close()
      local db, msg, code = streamdb.open(path)
      assert.is_nil(db)
      assert.is_string(msg)
      assert.is_true(code == E.NOT_A_DB or code == E.CORRUPT or code == E.INCOMPATIBLE,
        "unexpected code " .. tostring(code) .. " " .. tostring(msg))
    end)

    it("applies options and rejects invalid ones", function()
      local db = H.fresh({ page_size = 4096, page_cache_size = 64, versions_to_keep = 3,
                           sync_commits = false, use_mmap = true })
      assert.equal(4096, db:page_size())
      assert.is_true(db:max_path_len() > 0 and db:max_path_len() <= streamdb.MAX_PATH)
      assert.equal(64, db:cache_stats().capacity_pages)
      db:close()

      local bad, msg, code = streamdb.open(H.tmpdir() .. "/p.sdb", { page_size = 1000 })
      assert.is_nil(bad)
      assert.is_string(msg)
      assert.equal(E.INVALID, code)

      -- misuse raises
      assert.has_error(function() streamdb.open(H.tmpdir() .. "/q.sdb", { no_such_option = 1 }) end,
        "unknown option 'no_such_option'")
      assert.has_error(function() streamdb.open(H.tmpdir() .. "/q.sdb", { page_size = "big" }) end)
      assert.has_error(function() streamdb.open(H.tmpdir() .. "/q.sdb", { vfs = "tape" }) end)
      assert.has_error(function() streamdb.open(42) end)
      assert.has_error(function() streamdb.open(H.tmpdir() .. "/q.sdb", 7) end)
    end)

    it("works on the in-memory backend", function()
      local db = assert(streamdb.open("mem.sdb", { vfs = "memory" }))
      assert.is_string(db:write_document("/m", "in memory"))
      assert.equal("in memory", db:get("/m"))
      assert.is_true(db:close())
    end)

    it("gives LOCKED to a second process", function()
      local db, path = H.fresh()
      db:write_document("/x", "held")
      db:flush()
      local ok, rc, out = H.run_lua(([[
        local streamdb = require "streamdb"
        local db, msg, code = streamdb.open(%q)
        print(tostring(db), code, msg)
        os.exit(code == streamdb.errors.LOCKED and 0 or 3)
      ]]):format(path))
      assert.is_true(ok, out)
      db:close()
      -- and once released, the other process can open it and sees the data
      ok, rc, out = H.run_lua(([[
        local streamdb = require "streamdb"
        local db = assert(streamdb.open(%q))
        io.write(db:get("/x"))
        assert(db:close())
      ]]):format(path))
      assert.is_true(ok, out)
      assert.equal("held", out)
    end)
  end)

  describe("documents", function()
    local db
    before_each(function() db = H.fresh({ versions_to_keep = 3 }) end)
    after_each(function() db:close() end)

    it("writes and reads strings, empty and binary", function()
      local id = db:write_document("/levels/1/terrain.bin", "hello")
      assert.is_string(id)
      assert.matches(UUID, id)
      assert.equal("7", id:sub(15, 15), "UUID version 7 layout: " .. id)
      assert.equal("hello", db:get("/levels/1/terrain.bin"))

      local bin = H.bytes(3000, 7) .. "\0\0\0" .. H.bytes(100, 8)
      db:write_document("/bin", bin)
      assert.equal(bin, db:get("/bin"))

      db:write_document("/empty", "")
      assert.equal("", db:get("/empty"))
      assert.equal(0, db:stat("/empty").size)

      -- a document over several chunks
      local big = H.bytes(300000, 9)
      db:write_document("/big", big)
      assert.equal(big, db:get("/big"))
      assert.equal(big:sub(70001, 70100), db:read("/big", 70000, 100))
      assert.equal(big:sub(-10), db:read("/big", #big - 10, 1000))
      assert.equal("", db:read("/big", #big + 5, 10))
      assert.is_false(db:stat("/big").inline)
    end)

    it("try_get reads from memory or answers WOULDBLOCK at once", function()
      local small, mid, big = H.bytes(1000, 21), H.bytes(6000, 22), H.bytes(20000, 23)
      db:write_document("/t/small", small)
      db:write_document("/t/mid", mid)
      db:write_document("/t/big", big)
      -- chunk data with frames in the log needs a pread: never from memory
      local v, msg, code = db:try_get("/t/mid")
      assert.is_nil(v)
      assert.is_string(msg)
      assert.equal(E.WOULDBLOCK, code)
      assert.equal(mid, db:get("/t/mid"))
      assert.equal(E.WOULDBLOCK, select(3, db:try_get("/t/mid")))
      -- the inline document, once read, is in the page cache
      assert.equal(small, db:get("/t/small"))
      assert.equal(small, db:try_get("/t/small"))
      -- after a checkpoint the map holds everything, big documents too
      assert.is_true(db:flush())
      assert.equal(mid, db:try_get("/t/mid"))
      assert.equal(big, db:try_get("/t/big"))
      assert.equal(E.NOT_FOUND, select(3, db:try_get("/t/none")))
      -- an older version, by number
      db:write_document("/t/small", "new")
      local vs = db:versions("/t/small")
      assert.equal("new", db:get("/t/small"))
      local old = db:try_get("/t/small", vs[1])
      assert.is_true(old == small or old == nil)
      assert.equal(small, db:get("/t/small", vs[1]))
    end)

    it("returns nil, message, code for expected failures", function()
      local v, msg, code = db:get("/no/such/doc")
      assert.is_nil(v)
      assert.is_string(msg)
      assert.equal(E.NOT_FOUND, code)

      v, msg, code = db:stat("/no/such/doc")
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      v, msg, code = db:open("/no/such/doc")
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      v, msg, code = db:get_id_by_path("/no/such/doc")
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      v, msg, code = db:delete("/no/such/doc")
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      v, msg, code = db:read("/no/such/doc", 0, 10)
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      v, msg, code = db:versions("/no/such/doc")
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      assert.is_false(db:exists("/no/such/doc"))

      -- invalid paths are a failure of the call, not a Lua error
      for _, bad in ipairs({ "no-slash", "/a//b", "", "/trailing/" }) do
        v, msg, code = db:write_document(bad, "x")
        assert.is_nil(v, "path " .. ("%q"):format(bad))
        assert.is_string(msg)
        assert.equal(E.INVALID, code, "path " .. ("%q"):format(bad) .. ": " .. tostring(msg))
      end
      v, msg, code = db:write_document("/" .. string.rep("p", streamdb.MAX_PATH + 10), "x")
      assert.is_nil(v); assert.equal(E.INVALID, code)
    end)

    it("raises on misuse", function()
      assert.has_error(function() db:get(42) end)
      assert.has_error(function() db:get(nil) end)
      assert.has_error(function() db:get({}) end)
      assert.has_error(function() db:get("/x", "latest") end)
      assert.has_error(function() db:write_document("/x") end)
      assert.has_error(function() db:write_document("/x", 12) end)
      assert.has_error(function() db:write_document("/x", true) end)
      assert.has_error(function() db:write_document(1, "x") end)
      assert.has_error(function() db:get_by_id("not-an-id") end)
      assert.has_error(function() db:bind_to_path(string.rep("z", 36), "/p") end)
      assert.has_error(function() db.get(io.stdout, "/x") end)
      assert.has_error(function() db:read("/x", -1, 3) end)
      assert.has_error(function() db:chunks("/x", 0) end)
      assert.has_error(function() db:transaction("not a function") end)
    end)

    it("refuses documents over max_document_size", function()
      local small = H.fresh({ max_document_size = 1024 })
      assert.is_string(small:write_document("/ok", string.rep("a", 1024)))
      local v, msg, code = small:write_document("/big", string.rep("a", 1025))
      assert.is_nil(v); assert.equal(E.TOO_LARGE, code)
      local i = 0
      v, msg, code = small:write_document("/big2", function()
        i = i + 1
        if i <= 3 then return string.rep("b", 500) end
      end)
      assert.is_nil(v); assert.equal(E.TOO_LARGE, code)
      assert.equal(E.NOT_FOUND, select(3, small:get("/big2")))
      -- the writer was released: writing still works
      assert.is_string(small:write_document("/after", "fine"))
      assert.is_true(small:close())
    end)

    it("writes from an io file handle, in chunks", function()
      local content = H.bytes(200000, 3)
      local fname = H.tmpdir() .. "/src.bin"
      local f = assert(io.open(fname, "wb")); f:write(content); f:close()
      f = assert(io.open(fname, "rb"))
      local id = db:write_document("/from/file", f)
      assert.matches(UUID, id)
      assert.equal(content, db:get("/from/file"))
      -- it read to the end of the handle
      assert.is_nil(f:read(1))
      -- from the current position of the handle
      f:seek("set", 150000)
      db:write_document("/from/file-tail", f)
      assert.equal(content:sub(150001), db:get("/from/file-tail"))
      f:close()
      assert.has_error(function() db:write_document("/closed", f) end)
      assert.equal(E.NOT_FOUND, select(3, db:get("/closed")))
    end)

    it("writes from a function returning chunks, then nil", function()
      local parts = { "alpha-", "", "beta-", string.rep("g", 100000), "-end" }
      local i = 0
      local id = db:write_document("/from/fn", function()
        i = i + 1
        return parts[i]
      end)
      assert.matches(UUID, id)
      assert.equal(table.concat(parts), db:get("/from/fn"))
      assert.equal(#parts + 1, i)
    end)

    it("aborts the write when the data function raises", function()
      db:write_document("/keep", "v1")
      local n = 0
      local ok, err = pcall(db.write_document, db, "/keep", function()
        n = n + 1
        if n < 3 then return "partial data " end
        error("source exploded")
      end)
      assert.is_false(ok)
      assert.matches("source exploded", err)
      assert.equal("v1", db:get("/keep"))   -- nothing of the aborted write
      ok, err = pcall(db.write_document, db, "/new", function() error({ tag = "obj" }) end)
      assert.is_false(ok)
      assert.same({ tag = "obj" }, err)     -- the error value itself
      assert.equal(E.NOT_FOUND, select(3, db:get("/new")))
      -- a bad chunk type is misuse
      assert.has_error(function() db:write_document("/new", function() return 5 end) end)
      -- nil, message from the source is a failure of the call
      local v, msg, code = db:write_document("/new", function() return nil, "disk gone" end)
      assert.is_nil(v)
      assert.matches("disk gone", msg)
      assert.equal(E.IO, code)
      assert.equal(E.NOT_FOUND, select(3, db:get("/new")))
      -- the writer lock was released each time
      assert.is_string(db:write_document("/new", "ok"))
      assert.equal("ok", db:get("/new"))
      -- no nested writes from inside a data function
      assert.has_error(function()
        db:write_document("/outer", function() db:write_document("/inner", "x") end)
      end, "a streaming write is in progress on this database")
      assert.is_string(db:write_document("/outer", "ok"))
    end)

    it("writes from any object with a read method (another stream)", function()
      local content = H.bytes(150000, 11)
      db:write_document("/a", content)
      local s = assert(db:open("/a"))
      db:write_document("/copy", s)
      s:close()
      assert.equal(content, db:get("/copy"))
      local obj = { pos = 0 }
      function obj:read(n)
        if self.pos >= 10 then return nil end
        self.pos = self.pos + 1
        return tostring(self.pos) .. ","
      end
      db:write_document("/obj", obj)
      assert.equal("1,2,3,4,5,6,7,8,9,10,", db:get("/obj"))
    end)

    it("keeps versions", function()
      db:write_document("/v", "one")
      db:write_document("/v", "two")
      assert.same({ 1, 2 }, db:versions("/v"))
      assert.equal("two", db:get("/v"))
      assert.equal("two", db:get("/v", 0))
      assert.equal("one", db:get("/v", -1))
      assert.equal("one", db:get("/v", 1))
      assert.equal("two", db:get("/v", 2))
      local v, msg, code = db:get("/v", 7)
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      assert.equal(1, db:stat("/v", 1).version)
      assert.equal(2, db:stat("/v").version)
      db:write_document("/v", "three")
      db:write_document("/v", "four")
      local vs = db:versions("/v")
      assert.equal(3, #vs)   -- versions_to_keep = 3
      assert.same({ 2, 3, 4 }, vs)
      assert.equal("three", db:get("/v", -1))
      assert.equal(E.NOT_FOUND, select(3, db:get("/v", 1)))
      -- a stream reads the version it opened
      local s = db:open("/v", 3)
      assert.equal("three", s:read("a"))
      s:close()
    end)

    it("reports stat fields", function()
      local id = db:write_document("/crc", "123456789")
      local st = db:stat("/crc")
      assert.equal(id, st.id)
      assert.equal(9, st.size)
      assert.equal(1, st.version)
      assert.equal(0xE3069283, st.crc32c)   -- CRC32C check value
      assert.is_boolean(st.inline)
      assert.is_true(st.created_ns > 1600000000 * 1000000000)
      assert.is_true(st.modified_ns >= st.created_ns)
    end)

    it("handles ids and several paths per document", function()
      local id = db:write_document("/orig", "shared")
      local other = db:write_document("/other", "different")
      assert.not_equal(id, other)
      assert.equal(id, db:get_id_by_path("/orig"))
      assert.equal("shared", db:get_by_id(id))
      assert.equal("shared", db:get_by_id(id:upper()))
      assert.equal("shared", db:get_by_id((id:gsub("-", ""))))
      assert.is_true(db:bind_to_path(id, "/alias"))
      assert.is_true(db:bind_to_path(id, "/alias"))   -- binding to itself: no-op
      assert.equal("shared", db:get("/alias"))
      assert.same({ "/alias", "/orig" }, sorted(db:list_paths(id)))
      local v, msg, code = db:bind_to_path(other, "/alias")
      assert.is_nil(v); assert.equal(E.EXISTS, code)
      assert.equal(2, db:count())
      assert.is_true(db:unbind_path(id, "/alias"))
      assert.equal(E.NOT_FOUND, select(3, db:get("/alias")))
      assert.same({ "/orig" }, db:list_paths(id))
      -- deleting the last path removes the document
      assert.is_true(db:delete("/orig"))
      assert.equal(E.NOT_FOUND, select(3, db:get_by_id(id)))
      assert.equal(1, db:count())
      -- delete_by_id removes every path
      db:bind_to_path(other, "/o2")
      assert.is_true(db:delete_by_id(other))
      assert.equal(E.NOT_FOUND, select(3, db:get("/other")))
      assert.equal(E.NOT_FOUND, select(3, db:get("/o2")))
      assert.equal(0, db:count())
      v, msg, code = db:delete_by_id(other)
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
      v, msg, code = db:list_paths(other)
      assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
    end)
  end)

  describe("search", function()
    local db
    before_each(function()
      db = H.fresh()
      for _, p in ipairs({ "/a/1", "/a/2", "/a/b/3", "/a/b/c/4", "/c", "/ab" }) do
        db:write_document(p, p)
      end
    end)
    after_each(function() db:close() end)

    it("finds by prefix, in byte order", function()
      assert.same({ "/a/1", "/a/2", "/a/b/3", "/a/b/c/4" }, db:search("/a/"))
      assert.same({ "/a/1", "/a/2", "/a/b/3", "/a/b/c/4", "/ab" }, db:search("/a"))
      assert.same({}, db:search("/zzz"))
      assert.equal(6, #db:search("/"))
      assert.equal(6, db:count())
      assert.equal(6, db:stats().document_count)
    end)

    it("lists one level", function()
      assert.same({ "/a/1", "/a/2", "/a/b/" }, db:list("/a/"))
      assert.same({ "/a/", "/ab", "/c" }, db:list("/"))
      local got = {}
      for p in db:entries("/a/b/") do got[#got + 1] = p end
      assert.same({ "/a/b/3", "/a/b/c/" }, got)
    end)

    it("iterates lazily and releases the cursor on break", function()
      local base = db:stats().live_readers
      local got = {}
      for p in db:paths("/a/") do got[#got + 1] = p end
      assert.same(db:search("/a/"), got)
      assert.equal(base, db:stats().live_readers)
      for p in db:paths("/") do
        assert.equal("/a/1", p)
        assert.equal(base + 1, db:stats().live_readers)
        break
      end
      assert.equal(base, db:stats().live_readers)
      -- also when the loop body raises
      local ok = pcall(function()
        for _ in db:paths("/") do error("stop") end
      end)
      assert.is_false(ok)
      assert.equal(base, db:stats().live_readers)
      -- the cursor sees the database as of its opening
      local c = db:cursor("/a/")
      db:write_document("/a/0", "new")
      local seen = {}
      for p in c do seen[#seen + 1] = p end
      assert.same({ "/a/1", "/a/2", "/a/b/3", "/a/b/c/4" }, seen)
      assert.is_nil(c:next())
      c:close()
    end)
  end)

  describe("transactions", function()
    local db
    before_each(function() db = H.fresh() end)
    after_each(function() db:close() end)

    it("commits a function's writes and returns its results", function()
      local ok, a, b = db:transaction(function(x)
        db:write_document("/t/1", "one")
        db:write_document("/t/2", "two")
        return x * 2, "done"
      end, 21)
      assert.is_true(ok)
      assert.equal(42, a)
      assert.equal("done", b)
      assert.equal("one", db:get("/t/1"))
      assert.equal("two", db:get("/t/2"))
    end)

    it("rolls back and re-raises when the function raises", function()
      db:write_document("/t/keep", "before")
      local ok, err = pcall(db.transaction, db, function()
        db:write_document("/t/keep", "changed")
        db:write_document("/t/3", "three")
        error("abort!")
      end)
      assert.is_false(ok)
      assert.matches("abort!", err)
      assert.equal(E.NOT_FOUND, select(3, db:get("/t/3")))
      assert.equal("before", db:get("/t/keep"))
      local e = setmetatable({}, { __tostring = function() return "custom" end })
      ok, err = pcall(db.transaction, db, function() error(e) end)
      assert.equal(e, err)
      -- the handle is usable afterwards, and a new transaction can begin
      assert.is_true(db:transaction(function() db:write_document("/t/4", "four") end))
      assert.equal("four", db:get("/t/4"))
    end)

    it("supports streaming writes inside a transaction", function()
      local i = 0
      assert.is_true(db:transaction(function()
        db:write_document("/t/s", function() i = i + 1; if i < 4 then return "x" end end)
        db:write_document("/t/plain", "p")
      end))
      assert.equal("xxx", db:get("/t/s"))
      assert.equal("p", db:get("/t/plain"))
    end)

    it("has begin, commit and rollback", function()
      assert.is_true(db:begin())
      local v, msg, code = db:begin()
      assert.is_nil(v); assert.equal(E.TRANSACTION, code)
      db:write_document("/r", "rolled back")
      assert.is_true(db:rollback())
      assert.equal(E.NOT_FOUND, select(3, db:get("/r")))
      assert.is_true(db:begin())
      db:write_document("/c", "committed")
      assert.is_true(db:commit())
      assert.equal("committed", db:get("/c"))
      v, msg, code = db:commit()
      assert.is_nil(v); assert.equal(E.TRANSACTION, code)
      v, msg, code = db:rollback()
      assert.is_nil(v); assert.equal(E.TRANSACTION, code)
    end)
  end)

  describe("snapshots and maintenance", function()
    it("reads a snapshot while the database moves on", function()
      local db = H.fresh()
      db:write_document("/s", "old")
      local snap = assert(db:snapshot())
      assert.matches("^streamdb.snapshot", tostring(snap))
      db:write_document("/s", "new")
      db:write_document("/s2", "later")
      assert.equal("old", snap:get("/s"))
      assert.equal(E.NOT_FOUND, select(3, snap:get("/s2")))
      assert.same({ "/s" }, snap:search("/"))
      local st = snap:open("/s")
      assert.equal("old", st:read("a"))
      local v, msg, code = snap:write_document("/x", "y")
      assert.is_nil(v); assert.equal(E.READONLY, code)
      assert.equal("new", db:get("/s"))
      -- closing the database closes the snapshot and its stream
      assert.is_true(db:close())
      assert.equal("streamdb.snapshot (closed)", tostring(snap))
      v, msg, code = snap:get("/s")
      assert.is_nil(v); assert.equal(E.CLOSED, code)
      v, msg, code = st:read(1)
      assert.is_nil(v); assert.equal(E.CLOSED, code)
      assert.is_true(snap:close())
    end)

    it("flushes, checks, reports stats, toggles quick mode", function()
      local db, path = H.fresh()
      for i = 1, 20 do db:write_document("/m/" .. i, H.bytes(5000 * i, i)) end
      assert.is_true(db:flush())
      assert.is_true(db:check())
      local st = db:stats()
      assert.equal(20, st.document_count)
      assert.equal(20, st.path_count)
      assert.equal(db:page_size(), st.page_size)
      assert.is_true(st.total_pages > 0)
      assert.is_true(st.file_bytes >= st.page_size * 2)
      assert.is_true(st.last_txn >= 20)
      local cs = db:cache_stats()
      for _, k in ipairs({ "hits", "misses", "prefetch_hits", "evictions", "cached_pages", "capacity_pages" }) do
        assert.is_number(cs[k], k)
      end
      assert.is_true(db:set_quick_mode(true))
      assert.equal(H.bytes(5000 * 7, 7), db:get("/m/7"))
      assert.is_true(db:set_quick_mode(false))
      assert.is_true(db:compact())
      assert.is_true(db:check())
      assert.is_true(db:close())
      -- everything is there after reopening
      db = assert(streamdb.open(path))
      assert.equal(H.bytes(5000 * 13, 13), db:get("/m/13"))
      assert.equal(20, db:count())
      assert.is_true(db:close())
    end)
  end)
end)
