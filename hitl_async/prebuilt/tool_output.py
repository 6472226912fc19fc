"""Tool results that are `Command`s: langchain-core's tool machinery turns a result it does not
know into text, so a tool's `Command` travels as a `CommandOutput` (one of langchain-core's
`ToolOutputMixin`s) to the `ToolNode`, which unwraps it.
"""

from __future__ import annotations

import functools
from typing import Any

from langchain_core.messages.tool import ToolOutputMixin as _ToolOutputMixin
from langchain_core.tools import BaseTool

from hitl_async.types import Command

__all__ = ["CommandOutput", "command_aware"]

_OutputBase: Any = _ToolOutputMixin  # not re-exported by langchain_core.tools


class CommandOutput(_OutputBase):  # type: ignore[misc]
    """Carries a `Command` a tool returned through langchain-core's tool machinery, which
    would otherwise turn it into text (hitl-async's Command is no langchain-core type)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _wrap_commands(result: Any) -> Any:
    if isinstance(result, Command):
        return CommandOutput(result)
    if isinstance(result, list) and result and any(isinstance(r, Command) for r in result):
        return CommandOutput(result)
    return result


def command_aware(tool: BaseTool) -> BaseTool:
    """A copy of `tool` whose `Command` results survive langchain-core's output formatting."""
    copy = tool.model_copy()
    run, arun = tool._run, tool._arun

    @functools.wraps(run)  # BaseTool.run reads the signature (config, run_manager)
    def _run(*args: Any, **kwargs: Any) -> Any:
        return _wrap_commands(run(*args, **kwargs))

    @functools.wraps(arun)
    async def _arun(*args: Any, **kwargs: Any) -> Any:
        return _wrap_commands(await arun(*args, **kwargs))

    object.__setattr__(copy, "_run", _run)
    object.__setattr__(copy, "_arun", _arun)
    return copy
