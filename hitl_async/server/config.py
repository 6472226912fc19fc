"""`langgraph.json`, as `hitl serve` reads it: graphs, env, dependencies, auth, http.cors, the
long-term store's `ttl` and `index`, and the `webhooks.url` policy.

    {"dependencies": ["."], "graphs": {"agent": "./agent.py:graph"}, "env": ".env",
     "auth": {"path": "./auth.py:auth"}, "http": {"cors": {"allow_origins": ["*"]}},
     "store": {"ttl": {"default_ttl": 60}, "index": {"embed": "./embed.py:embed", "dims": 8}}}

A graph spec is `./file.py:attr` (relative to the file) or `package.module:attr`; the attribute
is a `StateGraph`, a `CompiledStateGraph` (rebound to the server's checkpoint store and
long-term store) or a function of no
argument (or of one: the config) returning either. Only the files named here are imported:
no request ever names code to run.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hitl_async.checkpoint.base import BaseSaver
from hitl_async.errors import InvalidConfigError
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.graph.state import StateGraph

__all__ = ["ServeConfig", "import_object", "load_graphs"]

_KNOWN_KEYS = frozenset(
    {
        "dependencies",
        "graphs",
        "env",
        "auth",
        "http",
        "store",
        "checkpointer",
        "python_version",
        "pip_config_file",
        "dockerfile_lines",
        "image_distro",
        "node_version",
        "base_image",
        "ui",
        "keep_pkg_tools",
        "api_version",
        "pip_installer",
        "webhooks",
    }
)


@dataclass
class ServeConfig:
    """What a `langgraph.json` asks for, with paths resolved against its directory."""

    graphs: dict[str, str]
    root: Path = field(default_factory=Path.cwd)
    env: dict[str, str] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    auth_path: str | None = None
    cors: dict[str, Any] | None = None
    store: dict[str, Any] = field(default_factory=dict)
    """The `store` section: `ttl` (LangGraph's TTLConfig keys) and `index` (`embed` names a
    function or Embeddings object as `./file.py:attr`, `dims`, `fields`)."""
    source: Path | None = None
    webhooks: dict[str, Any] = field(default_factory=dict)
    """The `webhooks` section: `url` holds the policy runs' webhook URLs are checked under."""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServeConfig:
        """Read and check a `langgraph.json`; `InvalidConfigError` naming the file and key."""
        file = Path(path).resolve()
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidConfigError(
                f"no config file at {file}; pass --config path/to/langgraph.json"
            ) from None
        except ValueError as exc:
            raise InvalidConfigError(f"{file} is not valid JSON: {exc}") from None
        return cls.from_dict(raw, root=file.parent, source=file)

    @classmethod
    def from_dict(
        cls, raw: Any, *, root: Path | None = None, source: Path | None = None
    ) -> ServeConfig:
        where = str(source) if source is not None else "the config"
        if not isinstance(raw, dict):
            raise InvalidConfigError(f"{where} must hold a JSON object")
        unknown = sorted(set(raw) - _KNOWN_KEYS)
        if unknown:
            raise InvalidConfigError(
                f"{where}: unknown key(s) {unknown}; known keys are {sorted(_KNOWN_KEYS)}"
            )
        graphs = raw.get("graphs")
        if not isinstance(graphs, dict) or not graphs:
            raise InvalidConfigError(
                f'{where} needs "graphs": {{"name": "./file.py:graph"}} with at least one graph'
            )
        for name, spec in graphs.items():
            if isinstance(spec, dict):
                spec = spec.get("path")
            if not isinstance(spec, str) or ":" not in spec:
                raise InvalidConfigError(
                    f'{where}: graph {name!r} must be "./file.py:attribute" or '
                    f'"package.module:attribute", got {spec!r}'
                )
            graphs[name] = spec
        base = root or Path.cwd()
        deps = raw.get("dependencies") or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise InvalidConfigError(f'{where}: "dependencies" must be a list of strings')
        auth = raw.get("auth") or {}
        if not isinstance(auth, dict):
            raise InvalidConfigError(f'{where}: "auth" must be an object like {{"path": ...}}')
        http = raw.get("http") or {}
        if not isinstance(http, dict):
            raise InvalidConfigError(f'{where}: "http" must be an object')
        cors = http.get("cors")
        if cors is not None and not isinstance(cors, dict):
            raise InvalidConfigError(f'{where}: "http.cors" must be an object')
        store = raw.get("store") or {}
        if not isinstance(store, dict) or not all(
            isinstance(store.get(k), dict | None) for k in ("ttl", "index")
        ):
            raise InvalidConfigError(
                f'{where}: "store" must be an object like {{"ttl": {{...}}, "index": {{...}}}}'
            )
        webhooks = raw.get("webhooks") or {}
        if not isinstance(webhooks, dict) or not isinstance(webhooks.get("url") or {}, dict):
            raise InvalidConfigError(
                f'{where}: "webhooks" must be an object like {{"url": {{"allowed_domains": '
                "[...]}}"
            )
        return cls(
            webhooks=webhooks,
            graphs=dict(graphs),
            root=base,
            env=_env(raw.get("env"), base, where),
            dependencies=deps,
            auth_path=auth.get("path"),
            cors=cors,
            store=store,
            source=source,
        )

    def store_options(self) -> dict[str, Any]:
        """`connect_store()` options from the `store` section (`ttl=`, `index=` with its `embed`
        imported); `InvalidConfigError` naming the key when they are unusable."""
        options: dict[str, Any] = {}
        where = str(self.source) if self.source is not None else "the config"
        ttl = self.store.get("ttl")
        if ttl:
            options["ttl"] = dict(ttl)
        index = self.store.get("index")
        if index:
            index = dict(index)
            embed = index.get("embed")
            if not isinstance(embed, str) or ":" not in embed:
                raise InvalidConfigError(
                    f'{where}: "store.index.embed" must name an embeddings function or object '
                    f'as "./file.py:attribute" or "package.module:attribute", got {embed!r}'
                )
            try:
                index["embed"] = import_object(embed, self.root)
            except (ImportError, InvalidConfigError) as exc:
                raise InvalidConfigError(
                    f'{where}: "store.index.embed" {embed!r} cannot be imported ({exc}); '
                    "provider strings such as 'openai:text-embedding-3-small' are not "
                    "supported: name a function of texts to vectors in your project"
                ) from None
            options["index"] = index
        return options

    def apply_environment(self) -> None:
        """Set `env` (existing variables win) and put local dependencies on `sys.path`."""
        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        for dep in reversed(self.dependencies):
            if dep.startswith((".", "/")):
                where = str((self.root / dep).resolve())
                if where not in sys.path:
                    sys.path.insert(0, where)
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def _env(value: Any, root: Path, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise InvalidConfigError(f'{where}: "env" must be an object or the path of a .env file')
    path = (root / value).resolve()
    if not path.exists():
        raise InvalidConfigError(f'{where}: "env" names {path}, which does not exist')
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match:
            text = match.group(2)
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                text = text[1:-1]
            found[match.group(1)] = text
    return found


def import_object(spec: str, root: Path) -> Any:
    """The object `./file.py:attr` or `module:attr` names (dots allowed in `attr`)."""
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or target.startswith((".", "/")):
        file = (root / target).resolve()
        if not file.exists():
            raise InvalidConfigError(f"graph file {file} (from {spec!r}) does not exist")
        name = "hitl_serve_" + re.sub(r"\W", "_", str(file.with_suffix("")))
        module = sys.modules.get(name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(name, file)
            if loader_spec is None or loader_spec.loader is None:
                raise InvalidConfigError(f"cannot import {file} (from {spec!r})")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
    else:
        module = importlib.import_module(target)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidConfigError(f"{target} has no attribute {attr!r} (from {spec!r})")
        obj = getattr(obj, part)
    return obj


def _compiled(obj: Any, saver: BaseSaver, store: Any, name: str, spec: str) -> CompiledStateGraph:
    if isinstance(obj, CompiledStateGraph):
        graph = obj.with_checkpointer(saver)
        if store is not None:
            graph.store = store  # the server's store replaces the one it was compiled with
    elif isinstance(obj, StateGraph):
        graph = obj.compile(checkpointer=saver, store=store)
    else:
        raise InvalidConfigError(
            f"graph {name!r} ({spec}) is a {type(obj).__name__}; expected a hitl_async "
            "StateGraph, CompiledStateGraph or a function returning one (a LangGraph graph "
            "needs its imports renamed: from hitl_async.graph import StateGraph)"
        )
    graph.name = name
    return graph


def load_graphs(
    config: ServeConfig, saver: BaseSaver, store: Any = None
) -> dict[str, CompiledStateGraph]:
    """Import every graph of `config`, bound to `saver` and named by its key; with `store`,
    their nodes see it (`runtime.store`, `get_store()`, `InjectedStore`), as the API does."""
    graphs: dict[str, CompiledStateGraph] = {}
    for name, spec in config.graphs.items():
        obj = import_object(spec, config.root)
        if callable(obj) and not isinstance(obj, CompiledStateGraph | StateGraph):
            params = [
                p
                for p in inspect.signature(obj).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            obj = obj({"configurable": {}}) if params else obj()
            if inspect.isawaitable(obj):
                raise InvalidConfigError(
                    f"graph {name!r} ({spec}) is an async factory; make it a plain function"
                )
        graphs[name] = _compiled(obj, saver, store, name, spec)
    return graphs
