"""Semantic search on every driver (exact cosine), restating LangGraph's vector-store tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import pytest
from apps.embeddings import CharEmbeddings, cosine

from hitl_async import InvalidIndexConfigError
from hitl_async.store import BackendStore, InMemoryStore

pytestmark = pytest.mark.anyio
MakeStore = Callable[..., BackendStore]


async def test_auto_embedding_and_ranking(
    vector_store: BackendStore, embeddings: CharEmbeddings
) -> None:
    docs = {
        "doc1": {"text": "short text"},
        "doc2": {"text": "longer text document"},
        "doc3": {"text": "longest text document here"},
        "doc4": {"description": "text in description field"},
    }
    for key, value in docs.items():
        await vector_store.aput(("test",), key, value)
    results = await vector_store.asearch(("test",), query="longer text document")
    # The default field "$" embeds the whole value as sorted JSON.
    query = embeddings.embed_query("longer text document")
    expected = {
        key: cosine(query, embeddings.embed_query(json.dumps(value, sort_keys=True)))
        for key, value in docs.items()
    }
    assert [r.key for r in results] == sorted(expected, key=lambda k: -expected[k])
    for r in results:
        assert r.score == pytest.approx(expected[r.key], abs=1e-5)


async def test_update_replaces_the_embedding(vector_store: BackendStore) -> None:
    await vector_store.aput(("test",), "doc1", {"text": "zany zebra Xerxes"})
    await vector_store.aput(("test",), "doc2", {"text": "something about dogs"})
    await vector_store.aput(("test",), "doc3", {"text": "text about birds"})
    first = await vector_store.asearch(("test",), query="Zany Xerxes")
    assert first[0].key == "doc1"
    await vector_store.aput(("test",), "doc1", {"text": "new text about dogs"})
    after = await vector_store.asearch(("test",), query="Zany Xerxes")
    new_score = next(r.score for r in after if r.key == "doc1")
    assert new_score is not None and first[0].score is not None and new_score < first[0].score
    # index=False: stored and searchable by filter, but without a vector (and it drops the old).
    await vector_store.aput(("test",), "doc1", {"text": "zany zebra Xerxes"}, index=False)
    await vector_store.aput(("test",), "doc4", {"text": "new text about dogs"}, index=False)
    ranked = await vector_store.asearch(("test",), query="new text about dogs", limit=10)
    scored = [r for r in ranked if r.score is not None]
    assert {r.key for r in scored} == {"doc2", "doc3"}
    assert [r.score for r in scored] == sorted((r.score for r in scored), reverse=True)
    unscored = [r.key for r in ranked if r.score is None]
    assert unscored == ["doc4", "doc1"]  # after every scored item, most recent first
    assert [r.key for r in ranked[-2:]] == ["doc4", "doc1"]


async def test_query_with_filters(vector_store: BackendStore) -> None:
    docs = {
        "doc1": {"text": "red apple", "color": "red", "score": 4.5},
        "doc2": {"text": "red car", "color": "red", "score": 3.0},
        "doc3": {"text": "green apple", "color": "green", "score": 4.0},
        "doc4": {"text": "blue car", "color": "blue", "score": 3.5},
    }
    for key, value in docs.items():
        await vector_store.aput(("test",), key, value)
    results = await vector_store.asearch(("test",), query="apple", filter={"color": "red"})
    assert [r.key for r in results] == ["doc1", "doc2"]
    results = await vector_store.asearch(("test",), query="car", filter={"color": "red"})
    assert [r.key for r in results] == ["doc2", "doc1"]
    results = await vector_store.asearch(
        ("test",), query="bbbbluuu", filter={"score": {"$gt": 3.2}}
    )
    assert len(results) == 3 and results[0].key == "doc4"
    results = await vector_store.asearch(
        ("test",), query="apple", filter={"score": {"$gte": 4.0}, "color": "green"}
    )
    assert [r.key for r in results] == ["doc3"]
    # A filter only Python can evaluate (a list operand) gives the same answer.
    results = await vector_store.asearch(
        ("test",), query="car", filter={"color": {"$ne": ["x"]}, "score": {"$lt": 3.6}}
    )
    assert {r.key for r in results} == {"doc2", "doc4"}
    assert results[0].score >= results[1].score  # type: ignore[operator]


async def test_query_pages(vector_store: BackendStore) -> None:
    for i in range(5):
        await vector_store.aput(("test",), f"doc{i}", {"text": f"test document number {i}"})
    everything = await vector_store.asearch(("test",), query="test", limit=10)
    assert len(everything) == 5
    page1 = await vector_store.asearch(("test",), query="test", limit=2)
    page2 = await vector_store.asearch(("test",), query="test", limit=2, offset=2)
    assert [r.key for r in page1 + page2] == [r.key for r in everything[:4]]


async def test_query_edge_cases(vector_store: BackendStore) -> None:
    await vector_store.aput(("test",), "doc1", {"text": "test document"})
    for query in ("", None, "test " * 100, "test!@#$%^&*()", "这是中文"):
        results = await vector_store.asearch(("test",), query=query)
        assert [r.key for r in results] == ["doc1"]
        assert (results[0].score is None) == (not query)


async def test_without_an_index_a_query_is_ignored(store: BackendStore) -> None:
    await store.aput(("test",), "doc1", {"text": "anything"})
    results = await store.asearch(("test",), query="anything")
    assert [r.key for r in results] == ["doc1"] and results[0].score is None


async def test_fields_paths(make_store: MakeStore, embeddings: CharEmbeddings) -> None:
    store = make_store(
        index={"embed": embeddings, "dims": embeddings.dims, "fields": ["key0", "key1", "key3"]}
    )
    await store.aput(("test",), "doc1", {"key1": "xxx", "key2": "yyy", "key3": "zzz"})
    await store.aput(
        ("test",), "doc2", {"key0": "uuu", "key1": "vvv", "key2": "www", "key3": "xxx"}
    )
    both = await store.asearch(("test",), query="xxx")
    assert both[0].score == pytest.approx(both[1].score, abs=1e-5)
    only2 = await store.asearch(("test",), query="uuu")
    assert only2[0].key == "doc2" and only2[0].score > only2[1].score  # type: ignore[operator]
    only1 = await store.asearch(("test",), query="zzz")
    assert only1[0].key == "doc1"
    unindexed = await store.asearch(("test",), query="www")  # key2 is not embedded
    assert all(r.score < both[0].score for r in unindexed)  # type: ignore[operator]


async def test_put_level_index_paths(make_store: MakeStore, embeddings: CharEmbeddings) -> None:
    store = make_store(index={"embed": embeddings, "dims": embeddings.dims, "fields": ["key17"]})
    await store.aput(
        ("test",), "doc3", {"key0": "aaa", "key1": "bbb", "key2": "ccc"}, ["key0", "key1"]
    )
    await store.aput(
        ("test",), "doc4", {"key0": "eee", "key1": "bbb", "key3": "ggg"}, ["key1", "key3"]
    )
    assert (await store.asearch(("test",), query="aaa"))[0].key == "doc3"
    assert (await store.asearch(("test",), query="ggg"))[0].key == "doc4"
    tie = await store.asearch(("test",), query="bbb")
    assert tie[0].score == pytest.approx(tie[1].score, abs=1e-5)
    await store.aput(("test",), "doc5", {"key0": "hhh"}, index=False)
    plain = await store.asearch(("test",))
    assert len(plain) == 3 and all(r.score is None for r in plain)
    # Arrays: "[*]" embeds each element; the item scores by its best element.
    await store.aput(("arr",), "a", {"notes": [{"t": "qqq"}, {"t": "ppp"}]}, ["notes[*].t"])
    await store.aput(("arr",), "b", {"notes": [{"t": "rrr"}]}, ["notes[*].t"])
    assert (await store.asearch(("arr",), query="ppp"))[0].key == "a"
    assert (await store.asearch(("arr",), query="rrr"))[0].key == "b"


@pytest.mark.parametrize("query", ["aaa", "bbb", "abcd", "poisson"])
async def test_scores_are_cosine(
    make_store: MakeStore, embeddings: CharEmbeddings, query: str
) -> None:
    store = make_store(index={"embed": embeddings, "dims": embeddings.dims, "fields": ["key0"]})
    await store.aput(("test",), "doc", {"key0": "aaa"})
    results = await store.asearch((), query=query)
    expected = cosine(embeddings.embed_query(query), embeddings.embed_query("aaa"))
    assert len(results) == 1
    assert results[0].score == pytest.approx(expected, abs=1e-5)  # float32 storage


async def test_non_ascii(vector_store: BackendStore) -> None:
    texts = ["这是中文", "これは日本語です", "이건 한국어야", "Это русский", "यह रूसी है"]
    for i, text in enumerate(texts, 1):
        await vector_store.aput(("user_123", "memories"), str(i), {"text": text})
    for i, text in enumerate(texts, 1):
        assert (await vector_store.asearch(("user_123", "memories"), query=text))[0].key == str(i)


async def test_sync_calls_and_function_embedders(make_store: MakeStore) -> None:
    chars = CharEmbeddings(dims=16)

    def embed(texts: Sequence[str]) -> list[list[float]]:
        return chars.embed_documents(list(texts))

    async def aembed(texts: Sequence[str]) -> list[list[float]]:
        return chars.embed_documents(list(texts))

    for fn in (embed, aembed):
        store = make_store(index={"embed": fn, "dims": 16, "fields": ["t"]})

        def work(store: BackendStore = store) -> list[str]:
            store.put(("f",), "a", {"t": "apple pie"})
            store.put(("f",), "b", {"t": "zebra"})
            return [r.key for r in store.search(("f",), query="apple")]

        assert await anyio.to_thread.run_sync(work) == ["a", "b"]
        assert [r.key for r in await store.asearch(("f",), query="zebra")] == ["b", "a"]


async def test_bad_index_configs() -> None:
    chars = CharEmbeddings(dims=8)
    with pytest.raises(InvalidIndexConfigError, match="dims"):
        InMemoryStore(index={"embed": chars, "dims": 0})
    with pytest.raises(InvalidIndexConfigError, match="embed"):
        InMemoryStore(index={"embed": 42, "dims": 8})  # type: ignore[typeddict-item]
    with pytest.raises(InvalidIndexConfigError, match="init_embeddings"):
        InMemoryStore(index={"embed": "openai:text-embedding-3-small", "dims": 8})
    store = InMemoryStore(index={"embed": chars, "dims": 9})  # the model makes 8
    with pytest.raises(InvalidIndexConfigError, match="dims=9"):
        await store.aput(("x",), "k", {"t": "a"})
    assert await store.asearch(("x",)) == []  # nothing was written

    def wrong_count(texts: Any) -> list[list[float]]:
        return []

    store = InMemoryStore(index={"embed": wrong_count, "dims": 8})
    with pytest.raises(InvalidIndexConfigError, match="one vector per text"):
        store.put(("x",), "k", {"t": "a"})
