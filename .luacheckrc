-- luacheck settings for the game logic in lua/ (`luacheck lua/`, run by ./dev test).
std = "lua54"

-- What the grid node's sandbox gives game scripts besides the Lua standard library.
-- Add a name here when the runtime starts to provide it.
read_globals = {
    "wait",
    "waitForSignal",
    "sendSignal",
    "waitForEvent",
    "outbox",
    "game",
}
