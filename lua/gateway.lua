-- Gateway logins: OnLogin({user = jid, world = path, role = the rule's role}) returns
-- nothing or true (let in with the rule's role), a role name, or false and a reason.
local banned = {}   -- bare JIDs, e.g. ["troll@example.org"] = true

function OnLogin(login)
  if banned[login.user] then
    return false, "banned"
  end
end
