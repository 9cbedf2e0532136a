"""``-D``, ``--pidfile``, ``--user`` / ``--group``: running as a service, as Suricata does.

* ``--pidfile FILE`` (or yaml ``pid-file``; ``-D`` without one uses ``pid-file`` else
  ``/var/run/suricata.pid``, Suricata's default): a start is refused when the file names a
  live process; a stale file is replaced. The file is written once the capture is open and
  removed at exit (``util-pidfile.c``).
* ``-D``: fork, ``setsid``, ``umask(027)``, ``chdir("/")``, stdin/stdout to
  ``/dev/null`` (``util-daemon.c``). Until the engine is ready the child's stderr goes
  to the parent, which prints it and exits 0 once the child says it is ready, or with the
  child's exit code when it stopped before (a bad rule file, a missing interface).
* ``--user`` / ``--group`` (or yaml ``run-as: {user, group}``): after the capture is
  opened and the logs are open, switch to that user and group (its supplementary groups
  too) keeping only ``CAP_NET_ADMIN``, ``CAP_NET_RAW`` and ``CAP_SYS_NICE``, the
  capabilities Suricata keeps for AF_PACKET/NFQ (``util-privs.c``), so bypass map updates,
  NFQ verdicts and removing the iptables rules at exit still work. Files reopened later
  (SIGHUP) must then be writable by that user.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import grp
import os
import pwd
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PIDFILE = "/var/run/suricata.pid"
_READY = b"\x00ruleengine-ready\n"
_KEEP_CAPS = (12, 13, 23)  # CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_NICE
_PR_SET_KEEPCAPS = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class DaemonError(Exception):
    """A start the service options refuse (one line for the user)."""


def add_arguments(parser: Any) -> None:
    parser.add_argument("-D", dest="daemon", action="store_true",
                        help="run as a daemon (fork, setsid, std fds to /dev/null)")
    parser.add_argument("--pidfile", metavar="FILE",
                        help="write the process id to FILE (refused if it names a live "
                        "process; removed at exit)")
    parser.add_argument("--user", metavar="USER",
                        help="run as USER once the capture and the logs are open")
    parser.add_argument("--group", metavar="GROUP",
                        help="run as GROUP once the capture and the logs are open")


@dataclass
class Service:
    """The service options of one run; ``ready()`` once the capture is open."""

    detach: bool = False
    pidfile: Path | None = None
    uid: int | None = None
    gid: int | None = None
    user_name: str | None = None
    _pipe: int | None = None  # -D: write end towards the waiting parent
    _owner: int | None = None  # the pid that wrote the pidfile
    _ready: bool = False

    @classmethod
    def from_args(cls, args: Any, config: Any) -> Service:
        """Raises DaemonError for an unknown user/group or a live pidfile."""
        detach = bool(getattr(args, "daemon", False))
        name = getattr(args, "pidfile", None) or _conf(config, "pid-file")
        if name is None and detach:
            name = DEFAULT_PIDFILE
        user = getattr(args, "user", None) or _conf(config, "run-as.user")
        group = getattr(args, "group", None) or _conf(config, "run-as.group")
        service = cls(detach=detach, pidfile=Path(name).absolute() if name else None)
        service._resolve_ids(user, group)
        if service.pidfile is not None:
            _check_pidfile(service.pidfile)
        return service

    @property
    def active(self) -> bool:
        return self.detach or self.pidfile is not None or self.uid is not None \
            or self.gid is not None

    def _resolve_ids(self, user: str | None, group: str | None) -> None:
        if user is not None:
            try:
                entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
            except KeyError:
                raise DaemonError(f"--user: no such user {user!r}") from None
            self.uid, self.gid, self.user_name = entry.pw_uid, entry.pw_gid, entry.pw_name
        if group is not None:
            try:
                self.gid = grp.getgrnam(group).gr_gid if not group.isdigit() \
                    else grp.getgrgid(int(group)).gr_gid
            except KeyError:
                raise DaemonError(f"--group: no such group {group!r}") from None
        if (self.uid is not None or self.gid is not None) and os.geteuid() != 0:
            raise DaemonError("--user/--group need to start as root")

    # --- -D ------------------------------------------------------------------------

    def daemonize(self) -> int | None:
        """Fork. In the parent: wait for the child to be ready and return the exit code
        for the parent (0 ready, else the child's); in the child: None."""
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid > 0:
            os.close(write_fd)
            return _wait_ready(read_fd, pid)
        os.close(read_fd)
        # modules imported later (a capture backend) must still be found from "/"
        sys.path[:] = [os.path.abspath(p) if not os.path.isabs(p) else p for p in sys.path]
        os.setsid()
        os.umask(0o027)
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(write_fd, 2)  # messages until ready go to the waiting parent
        os.close(null)
        self._pipe = write_fd
        return None

    # --- ready ---------------------------------------------------------------------

    def ready(self) -> None:
        """The capture is open and the logs are open: pidfile, privileges, tell the
        parent (``-D``). Only the first call in the main process acts."""
        if self._ready:
            return
        self._ready = True
        if self.pidfile is not None:
            try:
                self.pidfile.write_text(f"{os.getpid()}\n")
            except OSError as exc:
                raise DaemonError(f"cannot write pidfile {self.pidfile}: "
                                  f"{exc.strerror}") from None
            self._owner = os.getpid()
        self.drop_privileges()
        if self._pipe is not None:
            sys.stderr.flush()
            os.write(self._pipe, _READY)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            os.close(self._pipe)
            self._pipe = None

    def drop_privileges(self) -> None:
        """Switch to ``--user``/``--group`` keeping the capture capabilities (also called
        by each AF_PACKET worker once its socket is open)."""
        if self.uid is None and self.gid is None:
            return
        if os.getuid() == self.uid and (self.gid is None or os.getgid() == self.gid):
            return
        libc = _libc()
        if self.uid is not None and libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
            raise DaemonError("--user: prctl(PR_SET_KEEPCAPS) failed")
        if self.gid is not None:
            groups = [self.gid]
            if self.user_name is not None:
                groups = os.getgrouplist(self.user_name, self.gid)
            os.setgroups(groups)
            os.setresgid(self.gid, self.gid, self.gid)
        if self.uid is not None:
            os.setresuid(self.uid, self.uid, self.uid)
            _set_capabilities(libc, _KEEP_CAPS)

    def worker_opened(self) -> None:
        """An AF_PACKET worker process opened its socket: drop its privileges too and,
        under ``-D``, stop writing to the parent's pipe."""
        self.drop_privileges()
        if self.detach:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)

    def cleanup(self) -> None:
        """Remove the pidfile this process wrote (at exit)."""
        if self.pidfile is None or self._owner != os.getpid():
            return
        try:
            try:
                mine = self.pidfile.read_text().strip() == str(os.getpid())
            except PermissionError:  # written before --user: unreadable now, still ours
                mine = True
            if mine:
                self.pidfile.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            print(f"warning: cannot remove pidfile {self.pidfile}: {exc.strerror}",
                  file=sys.stderr)


def _conf(config: Any, key: str) -> str | None:
    value = config.get(key) if config is not None else None
    return None if value in (None, "") else str(value)


def _check_pidfile(path: Path) -> None:
    """``SCPidfileTestRunning``: a pidfile naming a live process refuses the start."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DaemonError(f"cannot read pidfile {path}: {exc.strerror}") from None
    if not text.isdigit():
        return  # unreadable content: replaced
    pid = int(text)
    if pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # stale: replaced when the engine is ready
    except PermissionError:
        pass  # alive, someone else's
    raise DaemonError(f"pid file '{path}' exists and process {pid} is running: not "
                      "starting (remove it if that is not this engine)")


def _wait_ready(read_fd: int, pid: int) -> int:
    """The parent of ``-D``: relay the child's messages until it is ready or gone."""
    data = b""
    with os.fdopen(read_fd, "rb") as pipe:
        while _READY not in data:
            chunk = pipe.read1(4096)
            if not chunk:
                break
            data += chunk
    text, ready, _ = data.partition(_READY)
    if text:
        sys.stderr.write(text.decode("utf-8", "replace"))
    if ready:
        return 0
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code > 0 else 1


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _set_capabilities(libc: Any, caps: tuple[int, ...]) -> None:
    """capset(2): exactly ``caps`` effective and permitted, nothing inheritable."""
    mask = 0
    for cap in caps:
        mask |= 1 << cap
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask & 0xFFFFFFFF
    data[1].effective = data[1].permitted = mask >> 32
    if libc.capset(ctypes.byref(header), data) != 0:
        raise DaemonError(f"--user: capset failed: {os.strerror(ctypes.get_errno())}")


@contextlib.contextmanager
def running(service: Service) -> Any:
    """Remove the pidfile however the run ends."""
    try:
        yield service
    finally:
        service.cleanup()
