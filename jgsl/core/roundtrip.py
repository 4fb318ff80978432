"""How long to wait for an answer: RFC 6298's retransmission timeout, as TCP computes it.

The original client waited a fixed 20 s before retrying and as long again before giving a
node up: a killed grid cost its players 40 s. Round trips over XMPP are milliseconds to a
few hundred, so the client measures them and waits a few times the smoothed round trip and
its variation, never less than ``minimum``, doubling per unanswered retry (Karn: a retried
request is not measured), never more than ``maximum``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Clock granularity (RFC 6298's G): the variation term is never smaller.
_GRANULARITY = 0.01


@dataclass
class RoundTripTimer:
    minimum: float = 1.0
    maximum: float = 20.0
    #: The timeout before the first measurement.
    initial: float = 3.0
    srtt: float | None = None
    rttvar: float = 0.0
    #: The timeout of a first try, kept up to date by L{sample} (asked every update).
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self._base()

    def sample(self, rtt: float) -> None:
        """A round trip measured on a request that was answered without a retry."""
        if rtt < 0:
            return
        srtt = self.srtt
        if srtt is None:
            srtt, rttvar = rtt, rtt / 2
        else:
            rttvar = 0.75 * self.rttvar + 0.25 * (srtt - rtt if srtt > rtt else rtt - srtt)
            srtt = 0.875 * srtt + 0.125 * rtt
        self.srtt, self.rttvar = srtt, rttvar
        # (every answer asks: the arithmetic of _base, without the calls)
        base = srtt + (4 * rttvar if rttvar > _GRANULARITY / 4 else _GRANULARITY)
        self.current = (self.minimum if base < self.minimum
                        else self.maximum if base > self.maximum else base)

    def timeout(self, retries: int = 0) -> float:
        """Seconds to wait for an answer after ``retries`` unanswered tries."""
        if not retries:
            return self.current
        return min(self.current * 2 ** min(retries, 16), self.maximum)

    def _base(self) -> float:
        if self.srtt is None:
            base = self.initial
        else:
            base = self.srtt + max(_GRANULARITY, 4 * self.rttvar)
        return min(max(base, self.minimum), self.maximum)
