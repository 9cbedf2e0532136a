"""FTP data channel (Suricata's ``ftp-data``): never probed -- a flow is ftp-data when the
FTP command channel announced it (PASV/EPSV replies, PORT/EPRT commands: see the ``ftp``
package's ``expectations``). Detection only here: ``alert ftp-data`` rules and
``app-layer-protocol:ftp-data`` inspect its payload and stream."""

from __future__ import annotations

from ruleengine.applayer.base import AppLayerSpec

PROTOCOL = AppLayerSpec(name="ftp-data", aliases=("ftp_data",), ipprotos=frozenset({6}))
