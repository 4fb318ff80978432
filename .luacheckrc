-- luacheck settings for the game logic in lua/ (`luacheck lua/`, run by ./dev test).
std = "lua54"

-- What the sandbox (jgsl/lua/prelude.lua) gives game scripts besides the Lua standard
-- library. Add a name here when the runtime starts to provide it.
read_globals = {
    "log", "wait", "waitForSignal", "sendSignal", "waitForEvent",
    "send", "broadcastEnv", "setField", "kick", "storeKey", "loadKey",
    "agents", "agent",
    npc = { fields = { "spawn", "move", "remove", "say" } },
}

-- What scripts define for the host: the hooks, and `state`, handed over on reload.
globals = {
    "state",
    "OnInit", "OnTick", "OnAgentEnter", "OnAgentLeave", "OnMessage", "OnStop", "OnReload",
    "OnLogin",
}

-- lua/api.lua is annotations for editors (---@meta): empty stubs that define what the
-- sandbox provides, never run. Only its syntax is checked.
files["lua/api.lua"] = { ignore = { ".*" } }
