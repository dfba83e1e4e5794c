"""Adapters, the ``@tool`` decorator, tool discovery and adapter loading.

An adapter is a class whose ``@tool`` methods the host can call. One instance
lives as long as the worker process, so expensive state (a model, a client)
is loaded once in :meth:`Adapter.setup` and reused by every call.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar, overload

from .context import CallContext
from .errors import INVALID_ARGUMENTS, ToolError
from .schema import NO_DEFAULT, ParamSpec, description_of, json_type, validate_arguments

F = TypeVar("F", bound=Callable[..., Any])

_MARKER: Final = "__snakepit_tool__"
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_DOTTED_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class Adapter:
    """Base class for the object a worker serves.

    ``thread_safe``: set True when the tools may run concurrently in several
    threads; only then may a worker run with ``--capacity`` above 1.
    """

    thread_safe: ClassVar[bool] = False

    def setup(self) -> None:
        """Called once when the worker starts, before it reports ready: load models here."""

    def teardown(self) -> None:
        """Called once at graceful shutdown, after the last call finished."""


class ToolKind(enum.Enum):
    """How a tool runs: sync ones in the thread pool, async ones on the event loop."""

    SYNC = "sync"
    ASYNC = "async"
    SYNC_STREAM = "sync_stream"
    ASYNC_STREAM = "async_stream"


@dataclass(frozen=True, slots=True)
class _ToolOptions:
    name: str | None
    description: str | None
    kind: ToolKind
    idempotent: bool
    inline: bool


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A discovered tool: its public description and how to call it."""

    name: str
    description: str
    kind: ToolKind
    idempotent: bool
    inline: bool
    attribute: str
    params: Mapping[str, ParamSpec]
    context_param: str | None
    binary_param: str | None
    accepts_extra: bool
    # Derived from kind once: the bridge asks on every call.
    streaming: bool = field(init=False)
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "streaming", self.kind in (ToolKind.SYNC_STREAM, ToolKind.ASYNC_STREAM))
        object.__setattr__(self, "is_async", self.kind in (ToolKind.ASYNC, ToolKind.ASYNC_STREAM))

    def bind(self, args: dict[str, Any] | bytes, ctx: CallContext) -> dict[str, Any]:
        """Validated keyword arguments for the call, with the context injected."""
        if isinstance(args, bytes):
            if self.binary_param is None:
                several = sum(spec.type.name == "binary" for spec in self.params.values()) > 1
                problem = (
                    "has several bytes parameters, so binary arguments cannot say which: send them by name"
                    if several
                    else "has no bytes parameter to receive binary arguments"
                )
                raise ToolError(
                    INVALID_ARGUMENTS,
                    f"{self.name} {problem}",
                    {"errors": [{"path": "$", "problem": "wrong_type", "expected": "object", "got": "binary"}]},
                )
            args = {self.binary_param: args}
        validate_arguments(self.name, args, self.params, self.accepts_extra)
        if self.context_param is not None:
            args[self.context_param] = ctx
        return args


class AdapterLoadError(Exception):
    """The adapter named on the command line cannot be used; the message says why."""


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    streaming: bool | None = None,
    idempotent: bool = False,
    inline: bool = False,
) -> Callable[[F], F]: ...


def tool(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    streaming: bool | None = None,
    idempotent: bool = False,
    inline: bool = False,
) -> F | Callable[[F], F]:
    """Mark an adapter method as a tool; usable bare (``@tool``) or with options.

    ``name`` defaults to the method name and ``description`` to the first line
    of its docstring. Generator functions (sync or async) are streaming tools;
    ``streaming=True`` also lets a plain sync method return an iterable whose
    items are streamed. ``idempotent`` declares the tool safe to retry on
    another worker after a crash.

    ``inline=True`` runs a plain sync tool on the worker's event loop instead
    of a thread: it saves the thread hand-off (measured: about a third of the
    worker's CPU per call for trivial tools), but while it runs the worker
    answers nothing else, heartbeats included, it cannot be cancelled and it
    cannot call the host. Only for tools that finish in well under a millisecond.
    """

    def mark(target: F) -> F:
        kind = _tool_kind(target, streaming)
        if inline and kind is not ToolKind.SYNC:
            raise TypeError(f"{getattr(target, '__qualname__', target)}: inline=True is for plain sync tools only")
        setattr(target, _MARKER, _ToolOptions(name, description, kind, idempotent, inline))
        return target

    return mark if func is None else mark(func)


def _tool_kind(func: Callable[..., Any], streaming: bool | None) -> ToolKind:
    if not inspect.isfunction(func):
        raise TypeError(f"@tool applies to methods defined with def, not {type(func).__name__}")
    label = func.__qualname__
    if inspect.isasyncgenfunction(func):
        if streaming is False:
            raise TypeError(f"{label}: an async generator is always a streaming tool")
        return ToolKind.ASYNC_STREAM
    if inspect.isgeneratorfunction(func):
        if streaming is False:
            raise TypeError(f"{label}: a generator is always a streaming tool")
        return ToolKind.SYNC_STREAM
    if inspect.iscoroutinefunction(func):
        if streaming:
            raise TypeError(f"{label}: a streaming async tool must be an async generator (use yield)")
        return ToolKind.ASYNC
    return ToolKind.SYNC_STREAM if streaming else ToolKind.SYNC


def discover_tools(cls: type[Adapter]) -> dict[str, ToolDefinition]:
    """All ``@tool`` methods of ``cls`` (inherited ones included), by tool name.

    Raises TypeError for anything that cannot be served: duplicate or invalid
    names, positional-only or ``*args`` parameters, unresolvable annotations.
    """
    tools: dict[str, ToolDefinition] = {}
    for attribute in dir(cls):
        member = inspect.getattr_static(cls, attribute)
        target = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
        options = getattr(target, _MARKER, None)
        if not isinstance(options, _ToolOptions):
            continue
        if target is not member:
            raise TypeError(f"{cls.__qualname__}.{attribute}: tools must be plain methods, not {type(member).__name__}")
        definition = _define(cls, attribute, target, options)
        if definition.name in tools:
            raise TypeError(
                f"{cls.__qualname__}: tool name {definition.name!r} is used by both "
                f"{tools[definition.name].attribute} and {attribute}"
            )
        tools[definition.name] = definition
    return tools


def _define(cls: type, attribute: str, func: Callable[..., Any], options: _ToolOptions) -> ToolDefinition:
    name = options.name or func.__name__
    label = f"{cls.__qualname__}.{attribute}"
    if not _TOOL_NAME.match(name):
        raise TypeError(f"{label}: invalid tool name {name!r} (letters, digits, _ . -; at most 64)")
    signature = inspect.signature(func)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"{label}: a tool is a method and must take self first")
    params: dict[str, ParamSpec] = {}
    context_param: str | None = None
    accepts_extra = False
    for parameter in parameters[1:]:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_extra = True
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise TypeError(
                f"{label}: parameter {parameter.name!r} cannot be passed by name; tools take named parameters"
            )
        # A parameter named ctx is injected whatever its annotation says, so it is never evaluated.
        annotation = None if parameter.name == "ctx" else _resolve_annotation(func, parameter, label)
        if parameter.name == "ctx" or _is_context(annotation):
            if context_param is not None:
                raise TypeError(f"{label}: both {context_param!r} and {parameter.name!r} ask for the CallContext")
            context_param = parameter.name
            continue
        default = NO_DEFAULT if parameter.default is inspect.Parameter.empty else parameter.default
        try:
            kind = json_type(annotation)
        except TypeError as exc:  # e.g. an array dtype that cannot travel
            raise TypeError(f"{label}: parameter {parameter.name!r}: {exc}") from None
        params[parameter.name] = ParamSpec(parameter.name, kind, default, description_of(annotation))
    # Binary arguments (the whole payload is bytes) go to the one bytes parameter; with several,
    # the caller names them (bytes may stand anywhere in named arguments).
    binary = [spec.name for spec in params.values() if spec.type.name == "binary"]
    return ToolDefinition(
        name=name,
        description=options.description if options.description is not None else _first_doc_line(func),
        kind=options.kind,
        idempotent=options.idempotent,
        inline=options.inline,
        attribute=attribute,
        params=params,
        context_param=context_param,
        binary_param=binary[0] if len(binary) == 1 else None,
        accepts_extra=accepts_extra,
    )


def _resolve_annotation(func: Callable[..., Any], parameter: inspect.Parameter, label: str) -> Any:
    """Evaluate string annotations (``from __future__ import annotations``) in the tool's module."""
    annotation = parameter.annotation
    # Twice at most: a quoted annotation in a postponed-annotations module is a string of a string.
    for _ in range(2):
        if not isinstance(annotation, str):
            break
        try:
            annotation = eval(annotation, getattr(func, "__globals__", {}))  # as typing.get_type_hints does
        except Exception as exc:  # any failure is the same problem for the user
            if isinstance(exc, NameError) and annotation.rsplit(".", 1)[-1] == "CallContext":
                return CallContext  # imported under TYPE_CHECKING only
            raise TypeError(
                f"{label}: cannot resolve the annotation {annotation!r} of {parameter.name!r}: {exc}"
            ) from exc
    return annotation


def _is_context(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, CallContext)


def _first_doc_line(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    return next((line.strip() for line in doc.splitlines() if line.strip()), "")


def load_adapter(spec: str) -> type[Adapter]:
    """Import the adapter class named ``"package.module:Class"``, with errors that say what to fix."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not _DOTTED_NAME.match(module_name) or not _DOTTED_NAME.match(class_name):
        raise AdapterLoadError(f"adapter must be given as 'package.module:Class', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise AdapterLoadError(
                f"adapter module {module_name!r} not found (is its directory on PYTHONPATH or the worker's cwd?)"
            ) from exc
        raise AdapterLoadError(f"importing adapter module {module_name!r} failed: {exc}") from exc
    except Exception as exc:  # whatever the module raised, the user needs to see it
        raise AdapterLoadError(f"importing adapter module {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    target: Any = module
    for part in class_name.split("."):
        if not hasattr(target, part):
            available = sorted(
                name
                for name, value in vars(module).items()
                if isinstance(value, type) and issubclass(value, Adapter) and value is not Adapter
            )
            hint = f"; adapters in it: {', '.join(available)}" if available else ""
            raise AdapterLoadError(f"module {module_name!r} has no attribute {class_name!r}{hint}")
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, Adapter)):
        raise AdapterLoadError(
            f"{spec} is not an Adapter subclass (got {type(target).__name__}); derive it from snakepit_bridge.Adapter"
        )
    return target
