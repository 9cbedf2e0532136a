"""Default loader: libbpf (Debian ``libbpf1``) through ctypes, for objects built by clang.

Only object handling goes through libbpf (open, resize/retype maps, load = verifier,
find programs and maps); map access and XDP attachment use ``syscall`` like the BCC loader.
No compiler is needed at run time. libbpf 1.x returns ``-errno`` from int functions and NULL
(with errno set) from pointer functions; pointer results must be ``c_void_p`` or ctypes
truncates them to 32 bits.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from capture_backends.ebpf import pins, syscall
from capture_backends.ebpf.syscall import BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH

LIBBPF_NAME = "libbpf.so.1"
_lib: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(LIBBPF_NAME, use_errno=True)
        vp, cp, ci, cu = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32
        signatures: dict[str, tuple[object, list[object]]] = {
            "bpf_object__open_file": (vp, [cp, vp]),
            "bpf_object__load": (ci, [vp]),
            "bpf_object__close": (None, [vp]),
            "bpf_object__find_program_by_name": (vp, [vp, cp]),
            "bpf_object__next_program": (vp, [vp, vp]),
            "bpf_object__find_map_by_name": (vp, [vp, cp]),
            "bpf_program__fd": (ci, [vp]),
            "bpf_program__name": (cp, [vp]),
            "bpf_map__fd": (ci, [vp]),
            "bpf_map__set_max_entries": (ci, [vp, cu]),
            "bpf_map__set_type": (ci, [vp, ci]),
            "libbpf_get_error": (ctypes.c_long, [vp]),
            "bpf_map__initial_value": (vp, [vp, ctypes.POINTER(ctypes.c_size_t)]),
            "bpf_map__reuse_fd": (ci, [vp, ci]),
            "bpf_map__type": (ci, [vp]),
            "bpf_map__key_size": (cu, [vp]),
            "bpf_map__value_size": (cu, [vp]),
            "bpf_map__max_entries": (cu, [vp]),
        }
        for name, (restype, argtypes) in signatures.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib = lib
    return _lib


def available() -> str | None:
    """None when libbpf can be used, else the reason."""
    try:
        _library()
    except OSError as exc:
        return f"{LIBBPF_NAME} not loadable ({exc}); install Debian package libbpf1"
    return None



# libbpf's own error numbers (libbpf.h, enum libbpf_errno), which os.strerror cannot name
_LIBBPF_ERRORS = {
    4000: "something wrong in libelf", 4001: "not a valid eBPF ELF object (BPF format error)",
    4002: "the object was built for a different kernel version", 4003: "endianness mismatch",
    4004: "internal libbpf error", 4005: "relocation failed", 4006: "load failed",
    4007: "the kernel verifier rejected the program", 4008: "program too big",
    4009: "wrong kernel version", 4010: "kernel does not support this program type",
    4011: "wrong pid in netlink message", 4012: "invalid netlink sequence",
    4013: "netlink parse error",
}


def _libbpf_strerror(err: int) -> str:
    return _LIBBPF_ERRORS.get(err) or os.strerror(err)


def _load_failure(name: str, err: int) -> str:
    """Why the kernel refused the object, with the fix: a permission refusal is not a
    verifier rejection (libbpf's own lines above say "Couldn't load trivial BPF program")."""
    if err in (errno.EPERM, errno.EACCES):
        return (f"loading {name} into the kernel was refused ({_libbpf_strerror(err)}): "
                "loading eBPF programs needs CAP_BPF (or CAP_SYS_ADMIN); run as root with "
                "those capabilities, or set `bypass: no` (and no ebpf/xdp filter file) to "
                "capture without the kernel bypass")
    return f"loading {name} into the kernel failed: {_libbpf_strerror(err)} (verifier log above)"

class LibbpfObject:
    """One loaded BPF object file. Maps named in ``resize`` get ``map_entries`` entries and
    become per-CPU hashes when ``percpu``; programs are verified and loaded at construction.

    With ``pin_dir`` (a directory in a bpffs), the ``resize`` maps are pinned there: one
    pinned already with the same layout is reused (``reused``: its entries are those of the
    previous run), a stale one is replaced (``notices`` says so)."""

    def __init__(self, path: str | os.PathLike[str], *, resize: tuple[str, ...] = (),
                 map_entries: int | None = None, percpu: bool = False,
                 vlan_in_key: bool = True, pin_dir: Path | None = None) -> None:
        self.path = Path(path)
        lib = _library()
        self._lib = lib
        self.reused: list[str] = []
        self.notices: list[str] = []
        if not self.path.is_file():
            raise OSError(2, f"BPF object {self.path} not found (run `make -C bpf`)")
        obj = lib.bpf_object__open_file(str(self.path).encode(), None)
        if not obj:
            err = ctypes.get_errno() or 22
            raise OSError(err, f"cannot open BPF object {self.path}: {_libbpf_strerror(err)}")
        self._obj: int | None = obj
        try:
            for name in resize:
                self._configure_map(name, map_entries, percpu)
            self._set_vlan_in_key(vlan_in_key)
            if pin_dir is not None:
                self._reuse_pins(resize, pin_dir)
            rc = lib.bpf_object__load(obj)
            if rc != 0:
                raise OSError(-rc, _load_failure(self.path.name, -rc))
            if pin_dir is not None:
                self._pin_new(resize, pin_dir)
        except BaseException:
            self.close()
            raise

    def _configure_map(self, name: str, entries: int | None, percpu: bool) -> None:
        m = self._lib.bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            return
        if entries is not None:
            rc = self._lib.bpf_map__set_max_entries(m, entries)
            if rc != 0:
                raise OSError(-rc, f"map {name}: cannot set max_entries={entries}")
        map_type = BPF_MAP_TYPE_PERCPU_HASH if percpu else BPF_MAP_TYPE_HASH
        rc = self._lib.bpf_map__set_type(m, map_type)
        if rc != 0:
            raise OSError(-rc, f"map {name}: cannot set type {map_type}")

    def _reuse_pins(self, names: tuple[str, ...], pin_dir: Path) -> None:
        """Before loading: hand libbpf the pinned tables that fit (it then creates none)."""
        lib = self._lib
        for name in names:
            m = lib.bpf_object__find_map_by_name(self._obj, name.encode())
            if not m:
                continue
            expected = syscall.MapInfo(lib.bpf_map__type(m), lib.bpf_map__key_size(m),
                                       lib.bpf_map__value_size(m), lib.bpf_map__max_entries(m),
                                       name)
            fd, notice = pins.reuse_or_remove(pin_dir / name, expected)
            if notice:
                self.notices.append(notice)
            if fd is None:
                continue
            try:
                rc = lib.bpf_map__reuse_fd(m, fd)  # libbpf keeps a dup of it
            finally:
                os.close(fd)
            if rc != 0:
                raise OSError(-rc, f"cannot reuse the pinned map {pin_dir / name}")
            self.reused.append(name)

    def _pin_new(self, names: tuple[str, ...], pin_dir: Path) -> None:
        pin_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            if name in self.reused:
                continue
            fd = self.map_fd(name)
            path = pin_dir / name
            if fd is None:
                continue
            if path.exists():  # pinned meanwhile by another object of this run: reuse next
                path.unlink()
            syscall.obj_pin(fd, str(path))

    def _set_vlan_in_key(self, enabled: bool) -> None:
        """Our programs' only read-only global is ``__u32 vlan_in_key`` (.rodata, 4 bytes);
        it is written into the map's initial image before loading."""
        m = self._lib.bpf_object__find_map_by_name(self._obj, b".rodata")
        if not m:
            if not enabled:
                raise OSError(22, f"{self.path.name} has no vlan_in_key setting")
            return
        size = ctypes.c_size_t(0)
        image = self._lib.bpf_map__initial_value(m, ctypes.byref(size))
        if not image or size.value != 4:
            if not enabled:
                raise OSError(22, f"{self.path.name}: unexpected .rodata ({size.value} bytes)")
            return
        ctypes.c_uint32.from_address(image).value = int(enabled)

    def program_fd(self, name: str | None = None) -> int:
        """fd of the program called ``name``; with None, of the object's first program."""
        if self._obj is None:
            raise OSError(9, "BPF object closed")
        if name is None:
            prog = self._lib.bpf_object__next_program(self._obj, None)
        else:
            prog = self._lib.bpf_object__find_program_by_name(self._obj, name.encode())
        if not prog:
            raise KeyError(f"no program {name!r} in {self.path}")
        fd = int(self._lib.bpf_program__fd(prog))
        if fd < 0:
            raise OSError(-fd, f"program {name!r} in {self.path} has no fd")
        return fd

    def map_fd(self, name: str) -> int | None:
        if self._obj is None:
            return None
        m = self._lib.bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            return None
        fd = int(self._lib.bpf_map__fd(m))
        return fd if fd >= 0 else None

    def close(self) -> None:
        """Close programs and maps (kernel objects live on while something else holds them,
        e.g. a socket the filter is attached to). Idempotent."""
        if self._obj is not None:
            obj, self._obj = self._obj, None
            self._lib.bpf_object__close(obj)
