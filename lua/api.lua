---@meta
-- EmmyLua annotations of what JGSL's sandbox gives game scripts (jgsl/lua/prelude.lua,
-- jgsl/lua/script.py) and of the hooks scripts define. For editors only: never run.
-- tests/test_lua_annotations.py checks that every global the runtime installs is here,
-- with the hooks docs/scripting.md lists; docs/scripting.md has an example of each.

---An agent as scripts see it (world coordinates; facing in radians).
---@class jgsl.Agent
---@field jid string the agent's JID (an NPC's: name.<node id>@<grid JID>)
---@field npc boolean a non-player agent spawned by a script
---@field name string? an NPC's name (as given to npc.spawn)
---@field role string the role the gateway granted ("guest", "friend", ...)
---@field x number
---@field y number
---@field z number
---@field facing number radians
---@field asset string? the AssetFile (character model)
---@field nickname string?
---@field anim string?

---The node a region script runs on (OnInit's argument).
---@class jgsl.NodeInfo
---@field id integer the node's id on its grid process
---@field world string the world path
---@field gx integer tile column
---@field gy integer tile row
---@field instance integer 0, or the overflow instance
---@field module string the script module (e.g. "regions.AlphaWorld")
---@field x number the tile's origin (world x)
---@field z number the tile's origin (world z)
---@field size number? the tile's size; nil for a world-wide node

---What waitForEvent returns.
---@class jgsl.AgentEvent
---@field kind "enter"|"leave"|"message"
---@field agent jgsl.Agent?
---@field message jgsl.GameMessageIn?

---A client's CS_GameMessage as OnMessage gets it.
---@class jgsl.GameMessageIn
---@field type string a registered payload type, e.g. "Say"
---@field body table the payload, converted by its descriptor (e.g. jgsl.game.Say)

---NPC fields for npc.spawn and npc.move (spawn needs x, y and z).
---@class jgsl.NpcFields
---@field x number?
---@field y number?
---@field z number?
---@field facing number? radians
---@field asset string? AssetFile; a human model by default
---@field nickname string?
---@field anim string?
---@field ccs string?
---@field scaling number?

---A login as the gateway's OnLogin sees it.
---@class jgsl.Login
---@field user string the user's bare JID
---@field world string the world path asked for
---@field role string the role the node rule gives

-- The hooks a script may define (all optional) ------------------------------------------

---The node starts (after its stored logs are loaded).
---@type fun(node: jgsl.NodeInfo)?
OnInit = nil

---Every grid tick (--tick, 0.1 s).
---@type fun(now: number)?
OnTick = nil

---A player's agent joins the node (or stops observing).
---@type fun(agent: jgsl.Agent)?
OnAgentEnter = nil

---An agent logs out, times out, is kicked or becomes an observer.
---@type fun(agent: jgsl.Agent)?
OnAgentLeave = nil

---A client's CS_GameMessage: its bare JID and the message.
---@type fun(from: string, msg: jgsl.GameMessageIn)?
OnMessage = nil

---The node closes or the process shuts down.
---@type fun()?
OnStop = nil

---In the new VM during a hot reload: the old VM's global `state`, as plain data.
---@type fun(state: any)?
OnReload = nil

---gateway.lua only: decide a login. Return nothing or true (the rule's role), a role
---name, or false and a reason (refused "not authorized").
---@type fun(login: jgsl.Login): (boolean|string|nil), string?
OnLogin = nil

---Plain data kept across a hot reload (handed to OnReload, or kept as it is).
---@type any
state = nil

-- Reading ---------------------------------------------------------------------------------

---Every agent of the node with a position, NPCs included.
---@return jgsl.Agent[]
function agents() end

---One agent, by JID or NPC name; nil if not on the node.
---@param jid_or_npc string
---@return jgsl.Agent?
function agent(jid_or_npc) end

---A log line (the values joined by spaces), at most 1,000 characters.
---@param ... any
function log(...) end

-- The outbox (checked when called, applied by the node after the hook) -------------------

---@class jgsl.Npc
npc = {}

---Spawn (or update) an NPC `name` on this node.
---@param name string letters, digits, _ and -
---@param fields jgsl.NpcFields x, y and z required
function npc.spawn(name, fields) end

---Change any of an NPC's fields.
---@param name string
---@param fields jgsl.NpcFields
function npc.move(name, fields) end

---Remove an NPC: viewers get it as gone.
---@param name string
function npc.remove(name) end

---An SC_GameMessage "Say" to a client of the node, spoken by the NPC.
---@param name string the NPC
---@param jid string the client
---@param text string at most 1,024 characters
function npc.say(name, jid, text) end

---An SC_GameMessage of any registered payload type to a client.
---@param jid string
---@param type string e.g. "Say" (jgsl/wire/game.py registers the types)
---@param body table converted by the payload's descriptor
function send(jid, type, body) end

---An environment edit in the node's env log, sent to every client and persisted.
---@param kind string
---@param params table?
function broadcastEnv(kind, params) end

---Set an agent field (a player's stays until their client changes that field).
---@param jid_or_npc string
---@param field string an agent field: asset, nickname, anim, ccs, scaling, x, y, z, facing
---@param value any
function setField(jid_or_npc, field, value) end

---SC_Closing to a client of the node; its agent is saved and removed.
---@param jid string
---@param reason string?
function kick(jid, reason) end

---A script key (plain data, stored as JSON) in the node's cache and the store.
---@param key string at most 200 characters
---@param value any plain data
function storeKey(key, value) end

---A script key's value: from the cache at once, else the coroutine waits for the store.
---@param key string
---@return any
function loadKey(key) end

-- The scheduler (only from a hook's own coroutine) ----------------------------------------

---Park the hook's coroutine for `seconds`; returns the time it woke.
---@param seconds number
---@return number now
function wait(seconds) end

---Park until sendSignal(name, value); returns the value.
---@param name string
---@return any value
function waitForSignal(name) end

---Wake every coroutine waiting for signal `name`, handing it `value`.
---@param name string
---@param value any
function sendSignal(name, value) end

---Park until the agent's next event (enter, leave, message).
---@param agent_or_jid jgsl.Agent|string
---@return jgsl.AgentEvent
function waitForEvent(agent_or_jid) end

---Load a module of the scripts directory ("lib.patrol" is lua/lib/patrol.lua), once per VM.
---@param name string
---@return any
function require(name) end
