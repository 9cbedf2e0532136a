"""Link/network/transport decoding of raw frames into ``Packet`` records."""
