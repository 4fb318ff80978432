"""Grid regions: the square tile (or the whole world) that one grid node simulates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from jgsl.core.fields import decode_position, encode_position
from jgsl.wire import jgsl_pb2 as pb


@dataclass(frozen=True, slots=True)
class Region:
    """Tile ``(gx, gy)`` of ``size`` world units in a world, or the whole world if size is None.

    A tile covers x in [gx*size, (gx+1)*size) and z in [gy*size, (gy+1)*size): the region's
    "y" is world z, as in the original.
    """

    worldpath: str
    gx: int = 0
    gy: int = 0
    size: float | None = None
    #: World x, z of the tile's corner (0, 0 for a whole world): positions on the wire are
    #: relative to it. Kept, as every update asks.
    origin: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origin = (0.0, 0.0) if self.size is None else (self.gx * self.size, self.gy * self.size)
        object.__setattr__(self, "origin", origin)

    @classmethod
    def tile_at(cls, worldpath: str, x: float, z: float, size: float) -> Region:
        return cls(worldpath, math.floor(x / size), math.floor(z / size), size)

    def to_local(self, x: float, z: float) -> tuple[int, int]:
        """World x, z -> the node-relative, quantized (rx, rz) of the wire."""
        ox, oz = self.origin
        return encode_position(x - ox), encode_position(z - oz)

    def to_world(self, rx: int, rz: int) -> tuple[float, float]:
        """The wire's (rx, rz) -> world x, z."""
        ox, oz = self.origin
        return ox + decode_position(rx), oz + decode_position(rz)

    def contains(self, worldpath: str, x: float, z: float) -> bool:
        if worldpath != self.worldpath:
            return False
        if self.size is None:
            return True
        ox, oz = self.origin
        return ox <= x < ox + self.size and oz <= z < oz + self.size

    def smaller_than(self, other: Region) -> bool:
        """True if this region is strictly smaller (an infinite one is the largest)."""
        if self.size is None:
            return False
        return other.size is None or self.size < other.size

    def to_info(self, info: pb.NodeInfo) -> None:
        info.worldpath, info.gx, info.gy = self.worldpath, self.gx, self.gy
        if self.size is not None:
            info.gsize = self.size

    @classmethod
    def from_fields(cls, worldpath: str, gx: int, gy: int, gsize: float | None) -> Region:
        return cls(worldpath, gx, gy, gsize)

    def __str__(self) -> str:
        if self.size is None:
            return f"{self.worldpath}[whole world]"
        return f"{self.worldpath}[{self.gx},{self.gy}]x{self.size:g}"
