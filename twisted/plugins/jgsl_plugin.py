"""twistd plugin: ``twistd jgsl --role gateway|grid|emu|router|world``."""

from twisted.application.service import ServiceMaker

jgsl = ServiceMaker(
    "JGSL", "jgsl.tap", "Jabber Game Server Lite: gateway, grid, emulated users, router", "jgsl"
)
