-- `luarocks make` from a clean copy of the repository into a local tree,
-- then require from that tree in a fresh interpreter.
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*)/") or ".") .. "/helper.lua")

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("luarocks make", function()
  teardown(H.cleanup)

  it("builds and installs the rock from a clean copy", function()
    local ok, out = sh("command -v luarocks")
    if not ok then pending("luarocks is not installed"); return end
    local work = H.tmpdir()
    local copy = work .. "/src"
    local tree = work .. "/tree"
    local q = H.shell_quote
    -- a clean copy: the files git knows about (tracked, or untracked but not
    -- ignored), so no build directory or object file comes along
    if sh(("git -C %s rev-parse --is-inside-work-tree"):format(q(H.root))) then
      ok, out = sh(("cd %s && mkdir -p %s && git ls-files -z --cached --others --exclude-standard"
        .. " | xargs -0 cp --parents -t %s"):format(q(H.root), q(copy), q(copy)))
    else   -- not a git checkout: the tree minus build output
      ok, out = sh(("mkdir -p %s && tar -C %s --exclude='./build*' --exclude='*.o' --exclude='*.so'"
        .. " --exclude=./.git -cf - . | tar -C %s -xf -"):format(q(copy), q(H.root), q(copy)))
    end
    assert.is_true(ok, out)
    -- nothing built came along
    assert.is_nil(io.open(copy .. "/build-luarocks/streamdb.so", "rb"))
    local f = io.open(copy .. "/streamdb-0.1.0-1.rockspec")
    assert.is_not_nil(f, "rockspec not copied")
    f:close()
    ok, out = sh(("cd %s && luarocks --lua-version 5.4 --tree %s make streamdb-0.1.0-1.rockspec")
      :format(q(copy), q(tree)))
    assert.is_true(ok, out)
    local so = tree .. "/lib/lua/5.4/streamdb.so"
    f = io.open(so, "rb")
    assert.is_not_nil(f, "no " .. so .. "\n" .. out)
    f:close()
    -- only luaopen_streamdb is exported
    local nm_ok, syms = sh("nm -D --defined-only " .. q(so))
    if nm_ok then
      assert.matches("luaopen_streamdb", syms)
      assert.is_nil(syms:match("streamdb_open"), "core symbols leak from the module")
    end
    -- require it from the tree, in a clean interpreter (no cpath of ours)
    local dbfile = work .. "/rock.sdb"
    ok, out = sh(("%s -e %s"):format(H.lua, q(([[
      package.cpath = %q .. "/lib/lua/5.4/?.so"
      local streamdb = require "streamdb"
      assert(package.searchpath("streamdb", package.cpath):find(%q, 1, true))
      local db = assert(streamdb.open(%q))
      local id = db:write_document("/rock", "installed by luarocks")
      local s <close> = db:open("/rock")
      io.write(streamdb.version(), " ", s:read("a"), " ", #id)
    ]]):format(tree, tree, dbfile))))
    assert.is_true(ok, out)
    assert.equal("0.1.0 installed by luarocks 36", out)
    -- and luarocks knows the rock
    ok, out = sh(("luarocks --lua-version 5.4 --tree %s list --porcelain"):format(q(tree)))
    assert.is_true(ok, out)
    assert.matches("streamdb\t0.1.0%-1", out)
  end)
end)
