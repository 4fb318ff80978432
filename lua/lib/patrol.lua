-- A walk along a closed route of waypoints, as plain data (so it survives a reload).
local patrol = {}

---@param points number[][] waypoints {x, z}
---@param speed number world units per second
function patrol.new(points, speed)
  return { points = points, speed = speed, leg = 1, x = points[1][1], z = points[1][2] }
end

--- Advance by `dt` seconds; returns the new x, z and the facing (radians).
function patrol.step(route, dt)
  local points = route.points
  local target = points[route.leg % #points + 1]
  local dx, dz = target[1] - route.x, target[2] - route.z
  local distance = math.sqrt(dx * dx + dz * dz)
  local move = route.speed * dt
  if distance <= move then
    route.x, route.z = target[1], target[2]
    route.leg = route.leg % #points + 1
  else
    route.x, route.z = route.x + dx / distance * move, route.z + dz / distance * move
  end
  return route.x, route.z, math.atan(dz, dx)
end

return patrol
