-- db:get_async futures and the coroutine helper.
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*)/") or ".") .. "/helper.lua")
local streamdb, E = H.streamdb, H.E

describe("get_async", function()
  local db
  local big = H.bytes(1 << 20, 99) .. string.rep("Q", 3 << 20)
  setup(function()
    db = H.fresh()
    db:write_document("/a/small", "small document")
    db:write_document("/a/big", big)
  end)
  teardown(function() db:close(); H.cleanup() end)

  it("resolves to the document", function()
    local f = assert(db:get_async("/a/small"))
    assert.matches("^streamdb.future %(", tostring(f))
    assert.equal("small document", f:wait())
    assert.is_true(f:ready())
    assert.equal("small document", f:result())
    assert.equal("small document", f:result())
    assert.equal("streamdb.future (ready)", tostring(f))
    assert.is_false(f:cancel())          -- too late to cancel
    assert.equal("small document", f:result())
    local g = db:get_async("/a/big")
    assert.equal(big, g:wait())
  end)

  it("reads an earlier version", function()
    db:write_document("/a/ver", "one")
    db:write_document("/a/ver", "two")
    assert.equal("one", db:get_async("/a/ver", -1):wait())
  end)

  it("fails like get for a missing document", function()
    local f = db:get_async("/a/missing")
    local v, msg, code = f:wait()
    assert.is_nil(v); assert.is_string(msg); assert.equal(E.NOT_FOUND, code)
    v, msg, code = f:result()
    assert.is_nil(v); assert.equal(E.NOT_FOUND, code)
    assert.has_error(function() db:get_async(5) end)
  end)

  it("polls with ready() and raises on result() before ready", function()
    local f = db:get_async("/a/big")
    local raised = 0
    while not f:ready() do
      -- it may become ready between the two calls: then result() succeeds
      local ok, r = pcall(f.result, f)
      if ok then
        assert.equal(big, r)
      else
        raised = raised + 1
        assert.equal("future is not ready (use :wait() or check :ready())", r)
      end
    end
    assert.equal(big, f:result())
    print(("\n(result() raised %d times while pending)"):format(raised))
  end)

  it("can be cancelled", function()
    local results = { cancelled = 0, completed = 0 }
    for _ = 1, 10 do
      local f = db:get_async("/a/big")
      local was_pending = f:cancel()
      assert.is_true(f:ready())
      local v, msg, code = f:wait()
      if was_pending then
        assert.is_nil(v); assert.equal(E.CANCELLED, code)
        assert.equal("streamdb.future (cancelled)", tostring(f))
        results.cancelled = results.cancelled + 1
      else
        assert.equal(big, v)
        results.completed = results.completed + 1
      end
      assert.is_false(f:cancel())
    end
    assert.equal(10, results.cancelled + results.completed)
  end)

  it("waits with a timeout", function()
    local f = db:get_async("/a/small")
    local v = f:wait(10)
    assert.equal("small document", v)
  end)

  it("yields in a coroutine until ready (a game loop polling once a frame)", function()
    local futures = { db:get_async("/a/big"), db:get_async("/a/small"), db:get_async("/a/missing") }
    local results, frames = {}, 0
    local tasks = {}
    for i, f in ipairs(futures) do
      tasks[i] = coroutine.create(function()
        local v, msg, code = f:await()
        results[i] = { v, msg, code }
      end)
    end
    local yielded_future = false
    repeat
      frames = frames + 1
      local alive = 0
      for _, co in ipairs(tasks) do
        if coroutine.status(co) ~= "dead" then
          local ok, y = coroutine.resume(co)
          assert.is_true(ok, y)
          if y ~= nil then yielded_future = yielded_future or tostring(y):match("^streamdb.future") ~= nil end
          if coroutine.status(co) ~= "dead" then alive = alive + 1 end
        end
      end
    until alive == 0 or frames > 1e7
    assert.equal(big, results[1][1])
    assert.equal("small document", results[2][1])
    assert.is_nil(results[3][1]); assert.equal(E.NOT_FOUND, results[3][3])
    assert.is_true(frames >= 1)
    -- streamdb.await is the same helper; outside a coroutine it blocks
    assert.equal("small document", streamdb.await(db:get_async("/a/small")))
    local co = coroutine.wrap(function() return streamdb.await(db:get_async("/a/small")) end)
    local r = co()
    while type(r) ~= "string" do r = co() end
    assert.equal("small document", r)
  end)

  it("is joined by db:close(), keeping the result", function()
    local db2 = H.fresh()
    db2:write_document("/b", big)
    local fs = {}
    for i = 1, 4 do fs[i] = db2:get_async("/b") end
    assert.is_true(db2:close())
    for i = 1, 4 do
      assert.is_true(fs[i]:ready())
      assert.equal(big, fs[i]:result())
    end
    local v, msg, code = db2:get_async("/b")
    assert.is_nil(v); assert.equal(E.CLOSED, code)
  end)

  it("is joined by __gc", function()
    for _ = 1, 20 do db:get_async("/a/big") end
    collectgarbage(); collectgarbage()
    assert.equal("small document", db:get("/a/small"))
  end)
end)
