"""`langgraph.json` as `hitl serve` reads it, and the errors a wrong one gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apps.servers import CONFIG, ROOT

from hitl_async import InMemorySaver, InvalidConfigError
from hitl_async.server.config import ServeConfig, load_graphs
from hitl_async.store import InMemoryStore


def write(tmp: Path, doc: object, name: str = "langgraph.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(doc))
    return path


def test_reads_graphs_env_auth_and_cors(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# comment\nexport HITL_CFG_A='one'\nHITL_CFG_B=two\n")
    config = ServeConfig.load(
        write(
            tmp_path,
            {
                "dependencies": ["."],
                "graphs": {"agent": {"path": "./g.py:graph"}, "other": "pkg.mod:make"},
                "env": ".env",
                "auth": {"path": "./auth.py:auth"},
                "http": {"cors": {"allow_origins": ["*"]}},
                "python_version": "3.11",
            },
        )
    )
    assert config.graphs == {"agent": "./g.py:graph", "other": "pkg.mod:make"}
    assert config.env == {"HITL_CFG_A": "one", "HITL_CFG_B": "two"}
    assert config.auth_path == "./auth.py:auth" and config.cors == {"allow_origins": ["*"]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, 'needs "graphs"'),
        ({"graphs": {"a": "no-colon"}}, "must be"),
        ({"graphs": {"a": "./g.py:g"}, "surprise": 1}, "unknown key"),
        ({"graphs": {"a": "./g.py:g"}, "env": "missing.env"}, "does not exist"),
        ({"graphs": {"a": "./g.py:g"}, "dependencies": "."}, "list of strings"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path: Path, doc: object, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        ServeConfig.load(write(tmp_path, doc))


def test_loads_the_graphs_named_by_file(tmp_path: Path) -> None:
    config = ServeConfig.load(CONFIG)
    graphs = load_graphs(config, InMemorySaver())
    assert sorted(graphs) == ["agent", "chat", "configured", "memory", "nested", "pair", "slow"]
    assert graphs["agent"].name == "agent" and graphs["agent"].checkpointer is not None
    assert isinstance(graphs["memory"].store, InMemoryStore)  # no server store: its own
    store = InMemoryStore()
    with_store = load_graphs(config, InMemorySaver(), store)
    assert all(g.store is store for g in with_store.values())
    (tmp_path / "g.py").write_text("graph = 42\n")
    bad = ServeConfig.load(write(tmp_path, {"graphs": {"x": "./g.py:graph"}}))
    with pytest.raises(InvalidConfigError, match="expected a hitl_async StateGraph"):
        load_graphs(bad, InMemorySaver())
    missing = ServeConfig.load(write(tmp_path, {"graphs": {"x": "./nope.py:graph"}}))
    with pytest.raises(InvalidConfigError, match="does not exist"):
        load_graphs(missing, InMemorySaver())


def test_store_section_gives_the_store_options(tmp_path: Path) -> None:
    (tmp_path / "embed.py").write_text(
        "def embed(texts):\n    return [[1.0, 0.0] for _ in texts]\n"
    )
    ttl = {"default_ttl": 60, "refresh_on_read": False, "sweep_interval_minutes": 1}
    doc = {
        "graphs": {"a": "./g.py:g"},
        "store": {"ttl": ttl, "index": {"embed": "./embed.py:embed", "dims": 2}},
    }
    options = ServeConfig.load(write(tmp_path, doc)).store_options()
    assert options["ttl"] == ttl
    assert options["index"]["dims"] == 2 and options["index"]["embed"](["x"]) == [[1.0, 0.0]]
    store = InMemoryStore(**options)
    store.put(("a",), "k", {"text": "hello"})
    assert store.search(("a",), query="hi")[0].score is not None
    assert ServeConfig.load(write(tmp_path, {"graphs": {"a": "./g.py:g"}})).store_options() == {}
    provider = {"graphs": {"a": "./g.py:g"}, "store": {"index": {"embed": "openai:small"}}}
    with pytest.raises(InvalidConfigError, match="provider strings"):
        ServeConfig.load(write(tmp_path, provider)).store_options()
    with pytest.raises(InvalidConfigError, match='"store" must be an object'):
        ServeConfig.load(write(tmp_path, {"graphs": {"a": "./g.py:g"}, "store": {"ttl": 5}}))


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"}
    done = subprocess.run(
        [sys.executable, "-m", "hitl_async.cli", "serve", "--config", str(tmp_path / "x.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: no config file at") and "Traceback" not in done.stderr
    worker = subprocess.run(
        [sys.executable, "-m", "hitl_async.cli", "worker", "--store", "memory://"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 2 and "--config langgraph.json" in worker.stderr
