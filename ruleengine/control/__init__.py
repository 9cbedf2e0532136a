"""Suricata's unix command socket (``unix-manager.c``): the JSON protocol, its commands and a
client.

* ``server.CommandServer``: the listening ``AF_UNIX`` stream socket. It never blocks and
  never runs a thread: its owner calls ``poll()`` between packets (the packet loop) or from
  its own select loop (the AF_PACKET workers' parent), and every command runs there.
* ``commands``: the command table (Suricata's names, answers shaped as Suricata's) over a
  ``ControlTarget``, the small interface the composition root implements for a run.
* ``client.CommandClient``: the client side (``ruleengine sc``), speaking as ``suricatasc``.

This package imports nothing of the engine: it only knows the target interface.
"""
