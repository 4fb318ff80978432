"""A role hook for the tests: admins by name, nobody called 'banned'."""


def by_name(user: str, world: str, role: str) -> str | None:
    name = user.partition("@")[0]
    if name.startswith("banned"):
        return None
    return "administrator" if name.startswith("admin") else role
