"""Embeddings for semantic search: what `index={"embed": ...}` accepts, which texts of a value
are embedded (`fields` paths), and exact cosine similarity.

`embed` may be a LangChain `Embeddings` object (anything with `embed_documents`/`embed_query`,
and optionally their async twins), a function from a list of texts to a list of vectors, or an
async such function; `"provider:model"` strings need LangChain's `init_embeddings`.
"""

from __future__ import annotations

import array
import inspect
import json
import math
import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import anyio.to_thread

from hitl_async.store.errors import InvalidIndexConfigError

__all__ = [
    "AEmbeddingsFunc",
    "Embedder",
    "Embeddings",
    "EmbeddingsFunc",
    "cosine",
    "ensure_embeddings",
    "get_text_at_path",
    "pack_vector",
    "tokenize_path",
    "unpack_vector",
]

EmbeddingsFunc = Callable[[Sequence[str]], list[list[float]]]
AEmbeddingsFunc = Callable[[Sequence[str]], Awaitable[list[list[float]]]]


@runtime_checkable
class Embeddings(Protocol):
    """The part of LangChain's `Embeddings` interface a store uses."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class Embedder:
    """One way to call any accepted `embed`, sync or async, checking the vectors' length."""

    def __init__(self, embed: Any, dims: int) -> None:
        self.embed = embed
        self.dims = dims
        self._is_async_fn = not isinstance(embed, Embeddings) and _is_async_callable(embed)

    def _check(self, vectors: Any, count: int) -> list[list[float]]:
        if not isinstance(vectors, list | tuple) or len(vectors) != count:
            raise InvalidIndexConfigError(
                f"the index's embed returned {type(vectors).__name__} of "
                f"{len(vectors) if isinstance(vectors, list | tuple) else '?'} vectors "
                f"for {count} texts; it must return one vector per text"
            )
        out = []
        for vector in vectors:
            vec = [float(x) for x in vector]
            if len(vec) != self.dims:
                raise InvalidIndexConfigError(
                    f"the index's embed returned a vector of {len(vec)} numbers, but the store's "
                    f"index has dims={self.dims}; set dims to the model's vector size"
                )
            out.append(vec)
        return out

    def documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts to store, from synchronous code."""
        if isinstance(self.embed, Embeddings):
            return self._check(self.embed.embed_documents(texts), len(texts))
        if self._is_async_fn:
            from hitl_async import _sync

            return self._check(_sync.run(self.embed, texts), len(texts))
        return self._check(self.embed(texts), len(texts))

    def query(self, text: str) -> list[float]:
        """Embed a search query, from synchronous code."""
        if isinstance(self.embed, Embeddings):
            return self._check([self.embed.embed_query(text)], 1)[0]
        return self.documents([text])[0]

    async def adocuments(self, texts: list[str]) -> list[list[float]]:
        """Embed texts to store, from async code (a sync embed runs in a worker thread)."""
        if isinstance(self.embed, Embeddings):
            aembed = getattr(self.embed, "aembed_documents", None)
            if aembed is not None:
                return self._check(await aembed(texts), len(texts))
            return self._check(
                await anyio.to_thread.run_sync(self.embed.embed_documents, texts), len(texts)
            )
        if self._is_async_fn:
            return self._check(await self.embed(texts), len(texts))
        return self._check(await anyio.to_thread.run_sync(self.embed, texts), len(texts))

    async def aquery(self, text: str) -> list[float]:
        """Embed a search query, from async code."""
        if isinstance(self.embed, Embeddings):
            aembed = getattr(self.embed, "aembed_query", None)
            if aembed is not None:
                return self._check([await aembed(text)], 1)[0]
            vector = await anyio.to_thread.run_sync(self.embed.embed_query, text)
            return self._check([vector], 1)[0]
        return (await self.adocuments([text]))[0]


def _is_async_callable(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


def ensure_embeddings(embed: Any, dims: Any) -> Embedder:
    """An `Embedder` for an index's `embed` and `dims`, or `InvalidIndexConfigError`."""
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise InvalidIndexConfigError(f"index dims must be a positive int, got {dims!r}")
    if isinstance(embed, str):
        try:
            from langchain.embeddings import init_embeddings  # type: ignore[import-not-found]
        except ImportError as exc:
            raise InvalidIndexConfigError(
                f"index embed={embed!r} names a provider model, which needs LangChain's "
                "init_embeddings (pip install 'langchain>=0.3.9' and the provider's package); "
                "or pass an Embeddings object or a function from texts to vectors"
            ) from exc
        embed = init_embeddings(embed)
    if embed is None or not (isinstance(embed, Embeddings) or callable(embed)):
        raise InvalidIndexConfigError(
            "index embed must be an Embeddings object (embed_documents/embed_query) or a sync or "
            f"async function from a list of texts to a list of vectors, got {embed!r}"
        )
    return Embedder(embed, dims)


def tokenize_path(path: str) -> list[str]:
    """Split a field path into tokens: names, "[i]"/"[*]" indexes, "{a,b}" groups, "*"."""
    tokens: list[str] = []
    name = ""
    i = 0
    while i < len(path):
        ch = path[i]
        if ch in "[{":
            if name:
                tokens.append(name)
                name = ""
            close = "]" if ch == "[" else "}"
            depth, j = 0, i
            while j < len(path):
                if path[j] == ch:
                    depth += 1
                elif path[j] == close:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            tokens.append(path[i : j + 1])
            i = j + 1
            continue
        if ch == ".":
            if name:
                tokens.append(name)
                name = ""
        else:
            name += ch
        i += 1
    if name:
        tokens.append(name)
    return tokens


def _as_text(obj: Any) -> list[str]:
    if isinstance(obj, bool | int | float | str):
        return [str(obj)]
    if isinstance(obj, list | dict):
        return [json.dumps(obj, sort_keys=True, ensure_ascii=False)]
    return []


def _walk(obj: Any, tokens: list[str], pos: int) -> list[str]:
    if pos == len(tokens):
        return _as_text(obj)
    token = tokens[pos]
    out: list[str] = []
    if token.startswith("["):
        if not isinstance(obj, list):
            return []
        inner = token[1:-1]
        if inner == "*":
            for element in obj:
                out.extend(_walk(element, tokens, pos + 1))
            return out
        try:
            index = int(inner)
        except ValueError:
            return []
        if -len(obj) <= index < len(obj):
            return _walk(obj[index], tokens, pos + 1)
        return []
    if token.startswith("{"):
        if not isinstance(obj, dict):
            return []
        for field in token[1:-1].split(","):
            current: Any = obj
            for part in tokenize_path(field.strip()):
                current = current.get(part) if isinstance(current, dict) else None
            if current is not None:
                out.extend(_as_text(current))
        return out
    if token == "*":
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
        for child in children:
            out.extend(_walk(child, tokens, pos + 1))
        return out
    if isinstance(obj, dict) and token in obj:
        return _walk(obj[token], tokens, pos + 1)
    return []


def get_text_at_path(obj: Any, path: str | list[str]) -> list[str]:
    """The texts at a field path of a value ("$" or "" is the whole value as JSON)."""
    if not path or path == "$":
        return [json.dumps(obj, sort_keys=True, ensure_ascii=False)]
    tokens = tokenize_path(path) if isinstance(path, str) else path
    return _walk(obj, tokens, 0)


def pack_vector(vector: Sequence[float]) -> bytes:
    """A vector as the float32 bytes drivers store."""
    return array.array("f", vector).tobytes()


def unpack_vector(data: bytes) -> array.array[float]:
    """The float32 vector stored as `data`."""
    vec = array.array("f")
    vec.frombytes(data)
    return vec


def cosine(query: Sequence[float], query_norm: float, vector: Sequence[float]) -> float:
    """Cosine similarity of `vector` to a query whose norm is known (0.0 if either is zero)."""
    dot = sum(map(operator.mul, query, vector))
    norm = math.sqrt(sum(map(operator.mul, vector, vector)))
    if norm == 0.0 or query_norm == 0.0:
        return 0.0
    return float(dot / (norm * query_norm))
