-- Runs every benchmark for one interpreter on this project's luaevent.core ("ours"), Debian's C
-- module ("C"), luv and raw libevent where they have an analogue, interleaved per repetition
-- (ours, C, luv, raw, ours, C, luv, raw, ...), and prints medians, ratios and the performance
-- targets. Usually started by bench/run.sh, which builds raw_echo and snapshots our module.
--
--   lua5.4 bench/run.lua <interpreter>          e.g. lua5.4, luajit (from the project root)
--
-- Environment:
--   BENCH_QUICK=1        small sizes, 3 repetitions (about a minute per interpreter)
--   BENCH_REPS=n         repetitions (default 5, quick 3)
--   BENCH_CLOCK=wall     time runs by wall clock instead of process CPU time (timers_1000
--                        always uses CPU time: its wall time is mostly sleeping)
--   BENCH_ONLY=a,b       only these benchmarks (names as in the table)
--   BENCH_ECHO_BYTES=n   bytes per echo run (default 1 GiB, quick 64 MiB)
--   BENCH_OURS=dir       where ours is: LUA_CPATH="dir/?.so;;" (default build/<interpreter>)
--   BENCH_OURS_LABEL=s   how to name ours in the header (run.sh: the build file and its sha256)
--   BENCH_RAW=file       the compiled bench/raw_echo.c (no raw column without it)
--   BENCH_RAW_ACCEPT=file  the compiled bench/raw_accept.c (raw column of accept, echo_1000)
--   BENCH_CLIENT=file    the compiled bench/net_client.c, the client of accept, echo_1000 and
--                        mem_conn (those are skipped without it)
--   BENCH_TLS_CLIENT=file  the compiled bench/tls_client.c, the client of the TLS benchmarks
--   BENCH_RAW_TLS=file   the compiled bench/tls_accept.c (raw column of the TLS benchmarks)
--   BENCH_CERTS=dir      server.pem and server.key for the TLS servers (the TLS benchmarks are
--                        skipped without BENCH_TLS_CLIENT and BENCH_CERTS)
--   BENCH_VERBOSE=1      print every run's command and result as it goes
-- The driver itself needs Lua 5.3+ (run.sh uses lua5.4); the benchmarks run on <interpreter>.

local lua = arg[1]
if not lua then
  io.stderr:write("usage: lua5.4 bench/run.lua <interpreter>\n")
  os.exit(2)
end

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local QUICK = env("BENCH_QUICK", "0") ~= "0"
local REPS = tonumber(env("BENCH_REPS", QUICK and "3" or "5"))
local CLOCK = env("BENCH_CLOCK", "cpu")
assert(CLOCK == "cpu" or CLOCK == "wall", "BENCH_CLOCK must be cpu or wall")
local ECHO = tonumber(env("BENCH_ECHO_BYTES", QUICK and tostring(64 * 1048576) or tostring(1073741824)))
local VERBOSE = env("BENCH_VERBOSE", "0") ~= "0"
local ONLY
if env("BENCH_ONLY") then
  ONLY = {}
  for name in env("BENCH_ONLY"):gmatch("[^,%s]+") do ONLY[name] = true end
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok, code
end

local function abs(path)
  if path:sub(1, 1) == "/" then return path end
  return (capture("pwd"):gsub("%s+$", "")) .. "/" .. path
end

local OURS = abs(env("BENCH_OURS", "build/" .. lua))
local OURS_LABEL = env("BENCH_OURS_LABEL", OURS .. "/luaevent/core.so")
local RAW = env("BENCH_RAW")
if RAW then RAW = abs(RAW) end
local RAW_ACCEPT = env("BENCH_RAW_ACCEPT")
if RAW_ACCEPT then RAW_ACCEPT = abs(RAW_ACCEPT) end
local CLIENT = env("BENCH_CLIENT")
if CLIENT then CLIENT = abs(CLIENT) end
local TLS_CLIENT = env("BENCH_TLS_CLIENT")
if TLS_CLIENT then TLS_CLIENT = abs(TLS_CLIENT) end
local RAW_TLS = env("BENCH_RAW_TLS")
if RAW_TLS then RAW_TLS = abs(RAW_TLS) end
local CERTS = env("BENCH_CERTS")
if CERTS then CERTS = abs(CERTS) end
local TLS = TLS_CLIENT ~= nil and CERTS ~= nil
-- mem_conn holds N connections in the server and N in the client, each its own process.
local NOFILE = tonumber((capture("ulimit -n"):gsub("%s+$", ""))) or 1024

-- Every variable that could change which modules load is cleared; ours then sets LUA_CPATH.
local CLEAN = "env -u LUA_INIT -u LUA_INIT_5_2 -u LUA_INIT_5_3 -u LUA_INIT_5_4 -u LUA_INIT_5_5"
  .. " -u LUA_CPATH -u LUA_CPATH_5_2 -u LUA_CPATH_5_3 -u LUA_CPATH_5_4 -u LUA_CPATH_5_5"
  .. (CLIENT and (" BENCH_CLIENT=" .. shell_quote(CLIENT)) or " -u BENCH_CLIENT")
  .. (TLS and (" BENCH_TLS_CLIENT=" .. shell_quote(TLS_CLIENT) .. " BENCH_CERTS=" .. shell_quote(CERTS))
      or " -u BENCH_TLS_CLIENT -u BENCH_CERTS")
local OURS_ENV = CLEAN .. " LUA_CPATH=" .. shell_quote(OURS .. "/?.so;;")
  .. " LUA_CPATH_5_2=" .. shell_quote(OURS .. "/?.so;;")
  .. " LUA_CPATH_5_3=" .. shell_quote(OURS .. "/?.so;;")
  .. " LUA_CPATH_5_4=" .. shell_quote(OURS .. "/?.so;;")
  .. " LUA_CPATH_5_5=" .. shell_quote(OURS .. "/?.so;;")

local IMPLS = { "ours", "c", "luv", "luasec", "raw" }
local IMPL_NAME = { ours = "ours", c = "C", luv = "luv", luasec = "LuaSec", raw = "raw" }

-- Command for one run, and a check of the "loaded" line it must print.
local function command(impl, bench, size)
  local script = "bench/luaevent_bench.lua"
  if bench:match("^tls_") then
    -- LuaSec's events run on ours too: the comparison is of the TLS paths alone.
    if impl == "raw" then return CLEAN .. " " .. shell_quote(RAW_TLS) .. " " .. bench .. " " .. size end
    return OURS_ENV .. " " .. lua .. " bench/tls_bench.lua " .. impl .. " " .. bench .. " " .. size
  end
  if impl == "ours" then
    return OURS_ENV .. " " .. lua .. " " .. script .. " " .. bench .. " " .. size
  elseif impl == "c" then
    return CLEAN .. " " .. lua .. " " .. script .. " " .. bench .. " " .. size
  elseif impl == "luv" then
    return CLEAN .. " " .. lua .. " bench/luv_bench.lua " .. bench .. " " .. size
  elseif impl == "raw" and (bench == "accept" or bench == "echo_1000") then
    return CLEAN .. " " .. shell_quote(RAW_ACCEPT) .. " " .. bench .. " " .. size
  elseif impl == "raw" then
    local mode = bench == "echo_bev" and "bev" or "ev"
    return shell_quote(RAW) .. " " .. mode .. " " .. size
  end
end

local loaded_seen = {}
local function check_loaded(impl, module, path)
  local ok
  if impl == "ours" or (impl == "luasec" and module == "luaevent.core") then
    ok = module == "luaevent.core" and path:sub(1, #OURS + 1) == OURS .. "/"
  elseif impl == "luasec" then
    ok = module == "ssl" and path:match("^/usr/") ~= nil
  elseif impl == "c" then
    ok = module == "luaevent.core" and path:sub(1, #OURS + 1) ~= OURS .. "/" and path:match("^/usr/") ~= nil
  elseif impl == "luv" then
    ok = module == "luv"
  else
    ok = module == "libevent" or module == "libevent_openssl"
  end
  if not ok then
    io.stderr:write(("run.lua: %s loaded %s from %s: not what it should measure\n"):format(impl, module, path))
    os.exit(1)
  end
  local seen = module .. " " .. path
  local list = loaded_seen[impl]
  if not list then list = {} loaded_seen[impl] = list end
  local known = false
  for _, s in ipairs(list) do if s == seen then known = true end end
  if not known then list[#list + 1] = seen end
end

local errlog = os.tmpname()

-- Runs one benchmark process. Returns a table result name -> fields, or nil and an error.
local function run_one(impl, bench, size)
  local cmd = command(impl, bench, size)
  local out, ok = capture("timeout 1200 " .. cmd .. " 2>" .. shell_quote(errlog))
  local results = {}
  for line in out:gmatch("[^\n]+") do
    local module, path = line:match("^loaded (%S+) (.*)$")
    if module then check_loaded(impl, module, path) end
    local name, rest = line:match("^result (%S+)%s*(.*)$")
    if name then
      local fields = {}
      for k, v in rest:gmatch("(%w+)=(%S+)") do fields[k] = tonumber(v) or v end
      results[name] = fields
    end
  end
  if VERBOSE then io.stderr:write(("  %s\n    -> %s"):format(cmd, out)) end
  if not ok or next(results) == nil then
    local f = io.open(errlog, "r")
    local err = f and f:read("a") or ""
    if f then f:close() end
    err = err:gsub("\n%s*stack traceback:.*", ""):gsub("%s+$", "")
    local first = err:match("([^\n]*)\n?$") or ""
    return nil, (err:match("FAILED: ([^\n]*)") or first ~= "" and first or "exited without a result")
  end
  return results
end

----------------------------------------------------------------------------
-- The benchmarks. Each row is one figure of the table: `kind` says how it is computed from a
-- result line (time: seconds; rate: work per second, scaled; bytes: as printed), `better` which
-- way is good. Targets are on the ratio ours/<ref> of the medians, as the performance targets state them.
local MiB = 1048576
-- TLS echo: bytes each way, in all (tls_echo_100: shared among the 100 connections).
local TLS_ECHO = tonumber(env("BENCH_TLS_ECHO_BYTES", QUICK and tostring(256 * MiB) or tostring(1024 * MiB)))
local BENCHES = {
  { name = "timer_rearm", impls = { "ours", "c", "luv" }, size = QUICK and 300000 or 3000000,
    rows = { { result = "timer_rearm", label = "timer re-arm (Prosody), time", kind = "time",
               targets = { { ref = "c", op = "<=", x = 0.8 } } } } },
  { name = "timers_1000", impls = { "ours", "c", "luv" }, size = QUICK and 100 or 500,
    rows = { { result = "timers_1000", label = "1,000 timers x rounds, CPU time", kind = "time", clock = "cpu",
               targets = { { ref = "c", op = "<=", x = 0.8 } } } } },
  { name = "pingpong", impls = { "ours", "c", "luv" }, size = QUICK and 20000 or 100000,
    rows = { { result = "pingpong", label = "fd ping-pong, round trips/s", kind = "rate", unit = "rt/s", scale = 1,
               targets = { { ref = "c", op = ">=", x = 1.15 } } } } },
  { name = "buffer_lines", impls = { "ours", "c" }, size = QUICK and 500000 or 4000000,
    rows = { { result = "buffer_lines", label = "buffer add+readline, time", kind = "time",
               targets = { { ref = "c", op = "<=", x = 1.0 } } } } },
  { name = "buffer_getdata", impls = { "ours", "c" }, size = QUICK and 1000000 or 5000000,
    rows = { { result = "buffer_getdata", label = "buffer get_data+drain, time", kind = "time",
               targets = { { ref = "c", op = "<=", x = 1.0 } } } } },
  { name = "echo_socket", impls = { "ours", "c" }, size = ECHO,
    rows = { { result = "echo_socket", label = "echo addevent+LuaSocket, MiB/s", kind = "rate", unit = "MiB/s", scale = MiB,
               targets = {} } } },
  { name = "echo_evbuf", impls = { "ours", "c", "raw" }, size = ECHO,
    rows = { { result = "echo_evbuf", label = "echo addevent+buffer:read/write, MiB/s", kind = "rate", unit = "MiB/s", scale = MiB,
               targets = {} } } },
  { name = "echo_bev", impls = { "ours", "c", "luv", "raw" }, size = ECHO, c_broken = true,
    rows = { { result = "echo_bev", label = "echo bufferevent out:add(in), MiB/s", kind = "rate", unit = "MiB/s", scale = MiB,
               targets = { { ref = "raw", op = ">=", x = 1.0 }, { ref = "luv", op = ">=", x = 1.0 } } } } },
  { name = "mem_event", impls = { "ours", "c" }, size = 100000,
    rows = { { result = "mem_event_rss", label = "idle event, RSS bytes each", kind = "bytes",
               targets = { { ref = "c", op = "<=", x = 1.0 } } },
             { result = "mem_event_heap", label = "idle event, Lua heap bytes each", kind = "bytes",
               targets = { { ref = "c", op = "<=", x = 1.0 } } } } },
  { name = "mem_bev", impls = { "ours", "c" }, size = 100000,
    rows = { { result = "mem_bev_rss", label = "idle bufferevent, RSS bytes each", kind = "bytes",
               targets = { { ref = "c", op = "<=", x = 1.0 } } },
             { result = "mem_bev_heap", label = "idle bufferevent, Lua heap bytes each", kind = "bytes",
               targets = { { ref = "c", op = "<=", x = 1.0 } } } } },
  -- Network servers: ours on core.listener, luv's tcp server, raw libevent (raw_accept.c), all
  -- driven by the same client (net_client.c) in its own process; the time is the server's.
  -- The C module has no listener: n/a.
  { name = "accept", impls = { "ours", "luv", "raw" }, size = QUICK and 3000 or 20000, client = true,
    rows = { { result = "accept", label = "short connections (accept, echo, close)/s", kind = "rate", unit = "conn/s", scale = 1,
               targets = { { ref = "raw", op = ">=", x = 0.8 }, { ref = "luv", op = ">=", x = 1.0 } } } } },
  { name = "echo_1000", impls = { "ours", "luv", "raw" }, size = QUICK and 30 or 200, client = true,
    rows = { { result = "echo_1000", label = "1,000-connection echo, messages/s", kind = "rate", unit = "msg/s", scale = 1,
               targets = { { ref = "raw", op = ">=", x = 0.8 }, { ref = "luv", op = ">=", x = 1.0 } } } } },
  { name = "mem_conn", impls = { "ours", "c" }, size = math.min(QUICK and 2000 or 10000, NOFILE - 100), client = true,
    rows = { { result = "mem_conn_rss", label = "idle connection, RSS bytes each", kind = "bytes",
               targets = { { ref = "c", op = "<=", x = 1.0 } } },
             { result = "mem_conn_heap", label = "idle connection, Lua heap bytes each", kind = "bytes",
               targets = { { ref = "c", op = "<=", x = 1.0 } } } } },
  -- TLS servers (their own table): ours on core.listener with options.tls, LuaSec over LuaSocket
  -- driven by luaevent.core events (Prosody's way), raw libevent_openssl (tls_accept.c), all
  -- driven by bench/tls_client.c in its own process; the time is the server's.
  { name = "tls_echo_1", group = "tls", impls = { "ours", "luasec", "raw" }, size = TLS_ECHO, tls = true,
    rows = { { result = "tls_echo_1", label = "TLS echo, 1 connection, MiB/s", kind = "rate", unit = "MiB/s", scale = MiB,
               targets = { { ref = "luasec", op = ">=", x = 2.0 }, { ref = "raw", op = ">=", x = 0.9 } } } } },
  { name = "tls_echo_100", group = "tls", impls = { "ours", "luasec", "raw" }, size = TLS_ECHO, tls = true,
    rows = { { result = "tls_echo_100", label = "TLS echo, 100 connections, MiB/s", kind = "rate", unit = "MiB/s", scale = MiB,
               targets = { { ref = "luasec", op = ">=", x = 2.0 }, { ref = "raw", op = ">=", x = 0.9 } } } } },
  { name = "tls_handshake", group = "tls", impls = { "ours", "luasec", "raw" }, size = QUICK and 1000 or 5000, tls = true,
    rows = { { result = "tls_handshake", label = "TLS handshakes/s", kind = "rate", unit = "hs/s", scale = 1,
               targets = { { ref = "luasec", op = ">=", x = 1.2 } } } } },
}

local function value_of(row, fields)
  if row.kind == "bytes" then return fields.bytes end
  local secs = fields[row.clock or CLOCK]
  if row.kind == "time" then return secs end
  return fields.work / row.scale / secs
end

local function median(list)
  if #list == 0 then return nil end
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local m = #s // 2
  if #s % 2 == 1 then return s[m + 1] end
  return (s[m] + s[m + 1]) / 2
end

----------------------------------------------------------------------------
-- What is available for this interpreter.
local available = { ours = true, c = true, luv = true, luasec = true, raw = RAW ~= nil }
local skipped = {}
do
  local _, ok = capture(OURS_ENV .. " " .. lua .. " -e 'require \"luaevent.core\"' 2>/dev/null")
  if not ok then io.stderr:write("run.lua: cannot load ours from " .. OURS .. "\n") os.exit(1) end
  -- The C module has no _NAME; a luaevent-rs rock on the default paths (as the README installs
  -- it) is not the C module. Debian packages the C module (and luv) for 5.1-5.4 only.
  _, ok = capture(CLEAN .. " " .. lua .. " -e 'assert(require(\"luaevent.core\")._NAME == nil)' 2>/dev/null")
  if not ok then available.c = false skipped[#skipped + 1] = "C module (lua-event) not installed for " .. lua end
  _, ok = capture(CLEAN .. " " .. lua .. " -e 'require \"luv\"' 2>/dev/null")
  if not ok then available.luv = false skipped[#skipped + 1] = "luv (lua-luv) not installed for " .. lua end
  if not RAW then skipped[#skipped + 1] = "raw libevent: BENCH_RAW not set" end
  if not CLIENT then skipped[#skipped + 1] = "accept, echo_1000, mem_conn: BENCH_CLIENT not set" end
  _, ok = capture(CLEAN .. " " .. lua .. " -e 'require \"ssl\"' 2>/dev/null")
  if not ok then available.luasec = false skipped[#skipped + 1] = "LuaSec (lua-sec) not installed for " .. lua end
  if not TLS then skipped[#skipped + 1] = "TLS benchmarks: BENCH_TLS_CLIENT or BENCH_CERTS not set" end
  if TLS and not RAW_TLS then skipped[#skipped + 1] = "raw libevent_openssl: BENCH_RAW_TLS not set" end
  if RAW and not RAW_ACCEPT then skipped[#skipped + 1] = "raw libevent servers: BENCH_RAW_ACCEPT not set" end
end

local version = capture(lua .. " -v 2>&1"):gsub("%s+$", "")
local cpu_model = capture("grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2"):gsub("^%s+", ""):gsub("%s+$", "")
local ncpu = capture("nproc 2>/dev/null"):gsub("%s+$", "")
local load0 = capture("cut -d' ' -f1-3 /proc/loadavg"):gsub("%s+$", "")
local started = os.time()

-- samples[result][impl] = { values }; errors[bench][impl] = first error; runs counted.
local samples, errors = {}, {}
for _, b in ipairs(BENCHES) do
  if (not ONLY or ONLY[b.name]) and (CLIENT or not b.client) and (TLS or not b.tls) then
    errors[b.name] = {}
    for _, row in ipairs(b.rows) do
      samples[row.result] = {}
      for _, impl in ipairs(b.impls) do samples[row.result][impl] = {} end
    end
    io.stderr:write(("[%s] %s x%d:"):format(lua, b.name, REPS))
    for rep = 1, REPS do
      for _, impl in ipairs(b.impls) do
        if available[impl] and not (impl == "raw" and b.client and not RAW_ACCEPT)
            and not (impl == "raw" and b.tls and not RAW_TLS) then
          local results, err = run_one(impl, b.name, b.size)
          if results then
            for _, row in ipairs(b.rows) do
              local fields = results[row.result]
              if fields then
                local list = samples[row.result][impl]
                list[#list + 1] = value_of(row, fields)
              end
            end
          else
            errors[b.name][impl] = errors[b.name][impl] or err
          end
        end
      end
      io.stderr:write(" " .. rep)
    end
    io.stderr:write("\n")
  end
end
local load1 = capture("cut -d' ' -f1-3 /proc/loadavg"):gsub("%s+$", "")

----------------------------------------------------------------------------
-- The table.
local function fmt_value(row, v)
  if v == nil then return "-" end
  if row.kind == "time" then
    if v < 1 then return ("%.1f ms"):format(v * 1000) end
    return ("%.3f s"):format(v)
  elseif row.kind == "bytes" then
    return ("%.0f B"):format(v)
  elseif row.unit == "rt/s" then
    return ("%.0f"):format(v)
  else
    return ("%.0f"):format(v)
  end
end

local function pad(s, n, right)
  s = tostring(s)
  if #s >= n then return s end
  if right then return (" "):rep(n - #s) .. s end
  return s .. (" "):rep(n - #s)
end

-- Two tables: the main one (columns ours, C, luv, raw) and the TLS one (ours, LuaSec, raw =
-- libevent_openssl); each lists the benchmarks of its group.
local TABLES = {
  { group = nil, cols = { "ours", "c", "luv", "raw" } },
  { group = "tls", cols = { "ours", "luasec", "raw" } },
}
local notes = {}

local function table_rows(group, cols)
  local rows_out = {}
  for _, b in ipairs(BENCHES) do
    if b.group == group and samples[b.rows[1].result] then
      for _, row in ipairs(b.rows) do
        local med = {}
        for _, impl in ipairs(IMPLS) do
          local list = samples[row.result][impl]
          med[impl] = list and median(list)
        end
        local cells = { row.label }
        for _, impl in ipairs(cols) do
          local cell
          local ran = false
          for _, i in ipairs(b.impls) do if i == impl then ran = true end end
          if not ran then
            cell = ""
          elseif not available[impl] or (impl == "raw" and b.tls and not RAW_TLS) then
            cell = "n/a (missing)"
          elseif med[impl] then
            cell = fmt_value(row, med[impl])
          elseif impl == "c" and b.c_broken then
            cell = "n/a (broken in C)"
          else
            cell = "FAILED"
          end
          cells[#cells + 1] = cell
        end
        local function ratio(ref)
          if med.ours and med[ref] then return med.ours / med[ref] end
        end
        for i = 2, #cols do
          local r = ratio(cols[i])
          cells[#cells + 1] = r and ("%.2f"):format(r) or ""
        end
        local tparts, verdicts = {}, {}
        for _, t in ipairs(row.targets) do
          tparts[#tparts + 1] = ("%s%.2fx %s"):format(t.op, t.x, IMPL_NAME[t.ref])
          local r = ratio(t.ref)
          if r == nil then
            verdicts[#verdicts + 1] = "n/a"
          else
            local met = (t.op == "<=" and r <= t.x) or (t.op == ">=" and r >= t.x)
            verdicts[#verdicts + 1] = met and "met" or "NOT met"
          end
        end
        cells[#cells + 1] = #tparts > 0 and table.concat(tparts, ", ") or "(none)"
        cells[#cells + 1] = table.concat(verdicts, ", ")
        rows_out[#rows_out + 1] = cells
      end
      for _, impl in ipairs(b.impls) do
        local err = errors[b.name][impl]
        if err then
          local expected = impl == "c" and b.c_broken
          notes[#notes + 1] = ("%s on %s failed%s: %s"):format(b.name, IMPL_NAME[impl],
            expected and " (expected: the C module's bufferevent callbacks are broken)" or "", err)
        end
      end
    end
  end
  return rows_out
end

local function print_table(cols, rows_out)
  local header = { "benchmark (median)" }
  for _, impl in ipairs(cols) do header[#header + 1] = IMPL_NAME[impl] end
  for i = 2, #cols do header[#header + 1] = "ours/" .. IMPL_NAME[cols[i]] end
  header[#header + 1] = "target (ours/x)"
  header[#header + 1] = "verdict"
  local widths = {}
  for i, h in ipairs(header) do widths[i] = #h end
  for _, cells in ipairs(rows_out) do
    for i, c in ipairs(cells) do if #c > widths[i] then widths[i] = #c end end
  end
  local function line(cells)
    local parts = {}
    for i, c in ipairs(cells) do parts[i] = pad(c, widths[i], i > 1 and i < #header - 1) end
    return "| " .. table.concat(parts, " | ") .. " |"
  end
  local function rule()
    local parts = {}
    for i, w in ipairs(widths) do parts[i] = ("-"):rep(w) end
    return "|-" .. table.concat(parts, "-|-") .. "-|"
  end
  print(line(header))
  print(rule())
  for _, cells in ipairs(rows_out) do print(line(cells)) end
end

print(("== luaevent-rs benchmarks: %s, %s mode, %d repetitions, interleaved ours/C/luv/LuaSec/raw per repetition"):format(
  lua, QUICK and "quick" or "full", REPS))
print(("   %s; libevent %s; %s x %s CPUs; load average %s at start, %s at end; took %d s"):format(version,
  (capture("pkg-config --modversion libevent 2>/dev/null"):gsub("%s+$", "")), cpu_model, ncpu, load0, load1,
  os.time() - started))
print("   ours = " .. OURS_LABEL)
for _, impl in ipairs(IMPLS) do
  for _, seen in ipairs(loaded_seen[impl] or {}) do print(("   %-6s loaded %s"):format(IMPL_NAME[impl], seen)) end
end
print(("   times are %s time (timers_1000: CPU time always); echo moves %d MiB each way; sizes:"):format(
  CLOCK == "cpu" and "process CPU" or "wall-clock", ECHO // MiB))
local sizes = {}
for _, b in ipairs(BENCHES) do
  if samples[b.rows[1].result] then sizes[#sizes + 1] = b.name .. "=" .. b.size end
end
print("   " .. table.concat(sizes, " "))
local first = true
for _, t in ipairs(TABLES) do
  local rows_out = table_rows(t.group, t.cols)
  if #rows_out > 0 then
    if not first then print() end
    if t.group == "tls" then
      print("   TLS: figure = work / the server's CPU time (wall: the client's); one client for all,")
      print("   bench/tls_client.c on libevent_openssl in its own process; TLS 1.3, TLS_AES_128_GCM_SHA256,")
      print("   X25519, ECDSA P-256 certificate, no resumption; LuaSec = LuaSec over LuaSocket driven by")
      print("   luaevent.core events (ours); raw = bench/tls_accept.c (bufferevent_openssl_socket_new);")
      print("   echo timed from the last handshake; handshake: 8 at a time, the client closes once done")
    else
      print("   accept, echo_1000: figure = work / the server's CPU time (wall: the client's); one client for all,")
      print("   bench/net_client.c on raw libevent in its own process; accept: 8 at a time, 64 bytes each;")
      print("   echo_1000: 1,000 connections x echo_1000 messages of 64 bytes; mem_conn: n idle connections")
    end
    print_table(t.cols, rows_out)
    first = false
  end
end
print("   ratios: ours/x of the medians; for times and bytes lower is better, for rates higher is better")
for _, s in ipairs(skipped) do print("   skipped: " .. s) end
for _, n in ipairs(notes) do print("   note: " .. n) end

-- Every sample, to judge the noise.
print("   samples (in run order):")
for _, b in ipairs(BENCHES) do
  for _, row in ipairs(b.rows) do
    if samples[row.result] then
      local parts = {}
      for _, impl in ipairs(b.impls) do
        local list = samples[row.result][impl]
        if list and #list > 0 then
          local vs = {}
          for i, v in ipairs(list) do vs[i] = fmt_value(row, v):gsub(" ", "") end
          parts[#parts + 1] = IMPL_NAME[impl] .. " " .. table.concat(vs, " ")
        end
      end
      print(("     %-15s %s"):format(row.result, table.concat(parts, "; ")))
    end
  end
end
os.remove(errlog)
