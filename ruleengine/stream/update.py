"""What one packet did to a TCP stream: the tracker's answer to the pipeline."""

from __future__ import annotations

# Offsets further than this from the current contiguous end are out of window.
MAX_AHEAD = 1 << 26


class StreamUpdate:
    """What one packet did to the stream.

    ``data``: newly deliverable in-order app data as ``(to_server, bytes)`` chunks, in
    the order the app layer must see them. ``gaps``: indexes into ``data`` before which
    a hole was skipped in that chunk's direction (``len(data)`` when the gap comes after
    the last chunk); ``gap_toserver``/``gap_toclient`` summarise them.
    ``accept``: False when the packet is not part of a tracked stream (inspect it as a
    packet only). ``invalid``: the stream engine judged the packet invalid (wrong ACK in
    the handshake, out-of-window data, implausible RST, SYN on an established session):
    with ``stream.drop-invalid`` (Suricata's default) an IPS drops it.
    ``midstream_rejected``: the packet would start a session mid-stream but
    ``stream.midstream`` is off (Suricata's midstream exception policy applies).
    ``closed_toserver``/``closed_toclient``: that direction ended (FIN delivered, RST or
    flow end) and everything before it has been delivered: the app layer may see EOF.
    ``established``/``closed``: the session became established/closed on this packet.
    """

    __slots__ = (
        "accept",
        "closed",
        "closed_toclient",
        "closed_toserver",
        "data",
        "depth_reached_toclient",
        "depth_reached_toserver",
        "established",
        "events",
        "gap_toclient",
        "gap_toserver",
        "gaps",
        "invalid",
        "midstream_rejected",
    )

    def __init__(self) -> None:
        self.accept = True
        self.invalid = False
        self.midstream_rejected = False
        self.data: list[tuple[bool, bytes]] = []
        self.gaps: list[int] = []
        self.gap_toserver = False
        self.gap_toclient = False
        self.depth_reached_toserver = False
        self.depth_reached_toclient = False
        self.events: list[str] = []
        self.established = False
        self.closed = False
        self.closed_toserver = False
        self.closed_toclient = False

    def __repr__(self) -> str:
        return (
            f"StreamUpdate(accept={self.accept}, data={self.data!r}, gaps={self.gaps}, "
            f"events={self.events}, established={self.established}, closed={self.closed})"
        )
