-- Run once in every fresh VM, with the full standard library, before any game script.
-- It keeps what the host needs in locals, installs the sandboxed `require` and the host
-- API, then removes from the globals everything that reaches outside the VM.
-- Returns the functions the host calls (see jgsl/lua/sandbox.py).
local host = ...
local sethook, traceback = debug.sethook, debug.traceback
local create, resume, status = coroutine.create, coroutine.resume, coroutine.status
local yield, running = coroutine.yield, coroutine.running
local load, pack, unpack, concat = load, table.pack, table.unpack, table.concat
local error, type, tostring, pcall = error, type, tostring, pcall
local unlimit, relimit = host.unlimit, host.relimit

local LIMIT = "instruction limit exceeded"
local function on_count()
  -- From now on every instruction fails, so a script cannot pcall its way past the limit.
  sethook(on_count, "", 1)
  error(LIMIT, 2)
end

-- Host threads: coroutines the host runs hooks in, which may park on wait() and friends.
local hosted = setmetatable({}, { __mode = "k" })

local function resume_limited(co, limit, ...)
  sethook(co, on_count, "", limit)
  relimit()
  local result = pack(resume(co, ...))
  unlimit()
  if status(co) ~= "dead" then sethook(co) end
  if not result[1] then
    return false, traceback(co, tostring(result[2]))
  end
  if status(co) == "dead" then
    hosted[co] = nil
    return true, "done", unpack(result, 2, result.n)
  end
  return true, "parked", unpack(result, 2, result.n)
end

-- Calls into the host (Python) run with no memory limit: Lua must never run out of memory
-- while Python hands it a value (lupa: that aborts the process). They answer ok, value or
-- nil, message; a message becomes a Lua error at the script's call site.
local function call_host(fn, ...)
  unlimit()
  local ok, value = fn(...)
  relimit()
  if ok == nil then error(value, 3) end
  return value
end

local function park(kind, arg)
  if not hosted[running()] then
    error(kind .. "() may only be called from a hook, not from a coroutine of the script", 3)
  end
  return yield(kind, arg)
end

-- require: modules under lua/ only, text only, each loaded once; cycles are reported.
local loaded, loading = {}, {}
local function require(name)
  if type(name) ~= "string" then error("require: the module name must be a string", 2) end
  local cached = loaded[name]
  if cached ~= nil then return cached end
  for i = 1, #loading do
    if loading[i] == name then
      local cycle = {}
      for j = i, #loading do cycle[#cycle + 1] = loading[j] end
      cycle[#cycle + 1] = name
      error("circular require: " .. concat(cycle, " -> "), 2)
    end
  end
  unlimit()
  local text, path = host.read_module(name)
  relimit()
  if not text then error(path, 2) end
  local chunk, problem = load(text, "@" .. path, "t")
  if not chunk then error(problem, 0) end
  loading[#loading + 1] = name
  local ok, result = pcall(chunk, name)
  loading[#loading] = nil
  if not ok then error(result, 0) end
  if result == nil then result = true end
  loaded[name] = result
  return result
end

-- The host API. Side effects are commands the grid node applies after the call.
local api = {}
for name, fn in pairs(host.api) do
  api[name] = function(...)
    local value = call_host(fn, ...)  -- not a tail call: errors point at the script's line
    return value
  end
end

local env = _ENV
env.require = require
env.log = api.log
env.wait = function(seconds) return park("wait", seconds) end
env.waitForSignal = function(name) return park("signal", name) end
env.waitForEvent = function(agent) return park("event", agent) end
env.sendSignal = api.sendSignal
env.send = api.send
env.broadcastEnv = api.broadcastEnv
env.setField = api.setField
env.kick = api.kick
env.storeKey = api.storeKey
env.loadKey = function(key)
  local cached = api.loadKey(key)
  if cached.hit then return cached.value end
  return park("load", key)
end
env.agents = api.agents
env.agent = api.agent
env.npc = { spawn = api.npcSpawn, move = api.npcMove, remove = api.npcRemove, say = api.say }

for _, name in ipairs({ "os", "io", "debug", "package", "dofile", "loadfile",
                        "collectgarbage", "python", "string.dump" }) do
  local dot = name:find(".", 1, true)
  if dot then env[name:sub(1, dot - 1)][name:sub(dot + 1)] = nil else env[name] = nil end
end
env.debug = { traceback = traceback }

local exports = {}

-- Start fn(...) in a new host thread; returns ok, "done"|"parked", values... or false, error.
function exports.start(fn, limit, ...)
  local co = create(fn)
  hosted[co] = true
  return co, resume_limited(co, limit, ...)
end

function exports.resume(co, limit, ...)
  return resume_limited(co, limit, ...)
end

function exports.main(name, limit)
  return exports.start(require, limit, name)
end

return exports
