-- AlphaWorld: a guard patrols near the spawn point and greets whoever comes near.
local patrol = require("lib.patrol")

local GREET_RADIUS = 15      -- world units
local GREET_AGAIN = 120      -- seconds before the same player is greeted again
local Y = 36.6

-- Plain data only: a reload hands it to the new version (see OnReload).
state = state or { greeted = {}, total = 0 }

function OnInit(node)
  -- First the stored count (this may wait for the store): no greeting is counted before it.
  state.total = loadKey("greetings") or 0
  local cx, cz = (node.x or 0) + 95, (node.z or 0) + 95
  state.route = patrol.new({ { cx - 12, cz - 12 }, { cx + 12, cz - 12 },
                             { cx + 12, cz + 12 }, { cx - 12, cz + 12 } }, 2.0)
  npc.spawn("guard", { x = state.route.x, y = Y, z = state.route.z,
                       nickname = "Guard", anim = "Walk" })
  log("guard on duty in " .. node.world .. ", " .. state.total .. " greetings so far")
end

function OnTick(now)
  if not state.route then return end
  local dt = state.last and now - state.last or 0
  state.last = now
  local x, z, facing = patrol.step(state.route, dt)
  npc.move("guard", { x = x, z = z, facing = facing })
  for _, a in ipairs(agents()) do
    local dx, dz = a.x - x, a.z - z
    local seen = state.greeted[a.jid]
    if not a.npc and dx * dx + dz * dz <= GREET_RADIUS * GREET_RADIUS
        and (not seen or now - seen > GREET_AGAIN) then
      state.greeted[a.jid] = now
      state.total = state.total + 1
      npc.say("guard", a.jid, "Welcome to AlphaWorld, " .. (a.nickname or a.jid) .. "!")
      storeKey("greetings", state.total)
    end
  end
end

function OnAgentLeave(a)
  state.greeted[a.jid] = nil
end

function OnMessage(from, msg)
  if msg.type == "Say" then
    npc.say("guard", from, "You said: " .. msg.body.text)
  end
end

function OnReload(old)
  state = old or state
  log("guard script reloaded; " .. (state.total or 0) .. " greetings so far")
end
