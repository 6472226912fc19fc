"""A deterministic, offline embedding for store tests: character frequencies projected onto
fixed pseudo-random directions, normalized. Texts sharing characters score close."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter


class CharEmbeddings:
    """`embed_documents`/`embed_query` like LangChain's `Embeddings`, with `calls` counted."""

    def __init__(self, dims: int = 64) -> None:
        self.dims = dims
        self.calls = 0
        self._directions: dict[str, list[float]] = {}

    def _direction(self, ch: str) -> list[float]:
        vec = self._directions.get(ch)
        if vec is None:
            seed = int.from_bytes(hashlib.blake2b(ch.encode(), digest_size=8).digest(), "big")
            rng = random.Random(seed)
            vec = self._directions[ch] = [rng.gauss(0, 1) for _ in range(self.dims)]
        return vec

    def _one(self, text: str) -> list[float]:
        counts = Counter(text)
        total = sum(counts.values())
        out = [0.0] * self.dims
        for ch, n in counts.items():
            for i, x in enumerate(self._direction(ch)):
                out[i] += x * n / total
        norm = math.sqrt(sum(x * x for x in out))
        return [x / norm for x in out] if norm else out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return self._one(text)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return dot / (na * nb) if na and nb else 0.0
