-- The Lua 5.4 module `streamdb`, built together with the StreamDb core.
--   luarocks --lua-version 5.4 --tree DIR make streamdb-0.1.0-1.rockspec
-- (run from the repository root).  The module is self-contained: the core is
-- compiled into streamdb.so, so no libstreamdb needs to be installed.
rockspec_format = "3.0"
package = "streamdb"
version = "0.1.0-1"
source = {
   -- `luarocks make` builds the local checkout and does not fetch this.
   url = "git+https://example.invalid/streamdb.git",
   tag = "v0.1.0",
}
description = {
   summary = "Embedded document database: binary documents as io-style streams",
   detailed = [[
StreamDb stores binary documents (up to 256 MiB each by default) under
paths such as /levels/3/terrain.bin, finds them by exact path or prefix,
and reads them whole, by byte range, or as a stream that behaves like a
Lua file handle.]],
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
build = {
   type = "make",
   makefile = "lua/Makefile",
   build_variables = {
      CC = "$(CC)",
      CFLAGS = "$(CFLAGS)",
      LIBFLAG = "$(LIBFLAG)",
      LUA_INCDIR = "$(LUA_INCDIR)",
   },
   install_variables = {
      INST_LIBDIR = "$(LIBDIR)",
   },
}
