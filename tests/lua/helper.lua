-- Shared setup for the busted specs of the Lua module.
--
-- Finding the module: set STREAMDB_LUA_CPATH to the directory holding
-- streamdb.so (e.g. <build>/lua), or set LUA_CPATH_5_4 yourself.
local lfs = require "lfs"

local H = {}

local src = debug.getinfo(1, "S").source:sub(2)
local dir = src:match("^(.*)/[^/]*$") or "."
if dir:sub(1, 1) ~= "/" then dir = lfs.currentdir() .. "/" .. dir end
H.spec_dir = dir
H.root = dir:gsub("/tests/lua/?$", "")
H.lua = os.getenv("LUA") or "lua5.4"

local cdir = os.getenv("STREAMDB_LUA_CPATH")
if cdir and cdir ~= "" and not package.cpath:find(cdir, 1, true) then
  package.cpath = cdir .. "/?.so;" .. package.cpath
end

H.streamdb = require "streamdb"
H.E = H.streamdb.errors

local tmp_dirs = {}

-- A fresh directory under /tmp, removed by H.cleanup().
function H.tmpdir()
  local name = os.tmpname()         -- creates a file: reuse its unique name
  os.remove(name)
  assert(lfs.mkdir(name))
  tmp_dirs[#tmp_dirs + 1] = name
  return name
end

function H.cleanup()
  for _, d in ipairs(tmp_dirs) do os.execute("rm -rf '" .. d .. "'") end
  tmp_dirs = {}
end

-- A new database in a new directory; returns db, path.
function H.fresh(options)
  local path = H.tmpdir() .. "/test.sdb"
  local db, msg, code = H.streamdb.open(path, options)
  assert(db, ("open failed: %s (%s)"):format(tostring(msg), tostring(code)))
  return db, path
end

-- The fields of VmRSS / VmHWM in kB.
function H.proc_status(field)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+)"))
end

function H.shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs a Lua chunk in a child interpreter with the same cpath; returns
-- ok, exit code, output.
function H.run_lua(code)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write("package.cpath = ", ("%q"):format(package.cpath), "\n", code)
  f:close()
  local p = io.popen(H.lua .. " " .. H.shell_quote(script) .. " 2>&1")
  local out = p:read("a")
  local ok, how, rc = p:close()
  os.remove(script)
  return ok, rc, out
end

-- Deterministic test content: n bytes, seeded.
function H.bytes(n, seed)
  local t = {}
  local x = seed or 12345
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x % 256)
  end
  return table.concat(t)
end

return H
