"""A small mutation engine (the fallback when atheris is not installed, and the driver
of the short runs in the test suite): libFuzzer's usual byte mutations over seed inputs."""

from __future__ import annotations

import random
from collections.abc import Sequence

_INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\x7f\xff",
                b"\x80\x00", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                b"\r\n", b"\r\n\r\n", b"\n", b" ", b":", b";", b"%", b"\\", b'"', b"0",
                b"-1", b"99999999999999999999", b"\x00" * 64, b"A" * 300)


class Mutator:
    def __init__(self, seeds: Sequence[bytes], rng: random.Random, max_len: int = 4096) -> None:
        self.seeds = [s for s in seeds] or [b""]
        self.rng = rng
        self.max_len = max_len

    def next(self) -> bytes:
        rng = self.rng
        data = bytearray(rng.choice(self.seeds))
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
            self._mutate(data)
        return bytes(data[: self.max_len])

    def _mutate(self, data: bytearray) -> None:
        rng = self.rng
        op = rng.randrange(9)
        n = len(data)
        if n == 0 or op == 0:  # insert interesting bytes
            pos = rng.randint(0, n)
            data[pos:pos] = rng.choice(_INTERESTING)
        elif op == 1:  # flip a bit
            pos = rng.randrange(n)
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 2:  # random byte
            data[rng.randrange(n)] = rng.randrange(256)
        elif op == 3:  # delete a range
            pos = rng.randrange(n)
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 4:  # duplicate a range
            pos = rng.randrange(n)
            chunk = data[pos : pos + rng.randint(1, 64)]
            data[pos:pos] = chunk * rng.randint(1, 4)
        elif op == 5:  # truncate
            del data[rng.randrange(n) :]
        elif op == 6:  # splice another seed in
            other = rng.choice(self.seeds)
            if other:
                start = rng.randrange(len(other))
                pos = rng.randint(0, n)
                data[pos:pos] = other[start : start + rng.randint(1, 256)]
        elif op == 7:  # overwrite with an interesting value
            value = rng.choice(_INTERESTING)
            pos = rng.randrange(n)
            data[pos : pos + len(value)] = value
        else:  # add/subtract a small number to a byte (lengths, counts)
            pos = rng.randrange(n)
            data[pos] = (data[pos] + rng.randint(-8, 8)) % 256
