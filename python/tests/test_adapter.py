"""The @tool decorator, tool discovery, schema derivation and adapter loading."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal, Optional, TypedDict

import pytest

from snakepit_bridge import Adapter, AdapterLoadError, CallContext, ToolError, tool
from snakepit_bridge.adapter import ToolDefinition, ToolKind, discover_tools, load_adapter
from snakepit_bridge.schema import NO_DEFAULT, JsonType


class Point(TypedDict):
    x: int


class Sample(Adapter):
    @tool
    def plain(self, a: int, b: float, c: str, d: bool, e: bytes) -> None:
        """First line of the doc.

        More detail that is not part of the description.
        """

    # Optional[...], Any and a missing annotation on purpose: the forms whose schemas are under test.
    @tool(name="renamed", description="explicit", idempotent=True)
    def original(  # type: ignore[no-untyped-def]
        self,
        items: list[int],
        table: dict[str, Any],
        maybe: Optional[int] = None,  # noqa: UP045
        union: int | None = 3,
        anything: Any = None,
        untyped=1,  # noqa: ANN001
    ) -> None:
        pass

    @tool
    def shapes(
        self,
        pairs: list[list[str]],
        fixed: tuple[int, ...],
        bare: list,  # type: ignore[type-arg]  # a bare list on purpose
        point: Point,
        choice: Literal["a", "b"],
        mixed: int | str,
        described: Annotated[int, "how many"] = 2,
        nothing: None = None,
    ) -> None:
        pass

    @tool
    def injected(self, x: int, context: CallContext) -> None:
        pass

    @tool
    def stream(self) -> Iterator[int]:
        yield 1

    @tool
    async def coroutine(self) -> int:
        return 1

    @tool
    async def async_stream(self) -> AsyncIterator[int]:
        yield 1

    @tool(streaming=True)
    def iterable(self) -> list[int]:
        return [1]

    @tool
    def extra(self, a: int, **rest: Any) -> None:
        pass

    def not_a_tool(self) -> None:
        pass


@pytest.fixture(scope="module")
def tools() -> dict[str, ToolDefinition]:
    return discover_tools(Sample)


def types_of(tools: dict[str, ToolDefinition], name: str) -> dict[str, JsonType]:
    return {spec.name: spec.type for spec in tools[name].params.values()}


def test_discovery_and_names(tools: dict[str, ToolDefinition]) -> None:
    assert set(tools) == {
        "plain",
        "renamed",
        "shapes",
        "injected",
        "stream",
        "coroutine",
        "async_stream",
        "iterable",
        "extra",
    }
    renamed = tools["renamed"]
    assert renamed.attribute == "original"
    assert renamed.description == "explicit"
    assert renamed.idempotent
    assert tools["plain"].description == "First line of the doc."
    assert not tools["plain"].idempotent


def test_scalar_types(tools: dict[str, ToolDefinition]) -> None:
    assert types_of(tools, "plain") == {
        "a": JsonType("integer"),
        "b": JsonType("number"),
        "c": JsonType("string"),
        "d": JsonType("boolean"),
        "e": JsonType("binary"),
    }
    assert tools["plain"].binary_param == "e"


def test_containers_optionals_and_defaults(tools: dict[str, ToolDefinition]) -> None:
    renamed = tools["renamed"]
    assert types_of(tools, "renamed") == {
        "items": JsonType("array", items=JsonType("integer")),
        "table": JsonType("object"),
        "maybe": JsonType("integer", nullable=True),
        "union": JsonType("integer", nullable=True),
        "anything": JsonType("any"),
        "untyped": JsonType("any"),
    }
    assert renamed.params["items"].required
    assert not renamed.params["maybe"].required
    assert renamed.params["union"].default == 3
    assert renamed.params["items"].default is NO_DEFAULT


def test_other_shapes(tools: dict[str, ToolDefinition]) -> None:
    shapes = tools["shapes"]
    assert types_of(tools, "shapes") == {
        "pairs": JsonType("array", items=JsonType("array", items=JsonType("string"))),
        "fixed": JsonType("array", items=JsonType("integer")),
        "bare": JsonType("array", items=JsonType("any")),
        "point": JsonType("object"),
        "choice": JsonType("string"),
        "mixed": JsonType("any"),
        "described": JsonType("integer"),
        "nothing": JsonType("null"),
    }
    assert shapes.params["described"].description == "how many"


def test_context_is_injected_not_a_parameter(tools: dict[str, ToolDefinition]) -> None:
    class Twice(Adapter):
        @tool
        def t(self, context: CallContext, ctx: Any) -> None:
            pass

    with pytest.raises(TypeError, match="both 'context' and 'ctx'"):
        discover_tools(Twice)

    class ByName(Adapter):
        @tool
        def t(self, x: int, ctx) -> None:  # type: ignore[no-untyped-def]  # noqa: ANN001  # found by name
            pass

    definition = discover_tools(ByName)["t"]
    assert definition.context_param == "ctx"
    assert list(definition.params) == ["x"]


def test_context_annotation_under_type_checking() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from snakepit_bridge import Adapter, tool\n"
        "if TYPE_CHECKING:\n"
        "    from snakepit_bridge import CallContext\n"
        "class Lazy(Adapter):\n"
        "    @tool\n"
        "    def t(self, n: int, context: CallContext) -> int:\n"
        "        return n\n",
        namespace,
    )
    definition = discover_tools(namespace["Lazy"])["t"]
    assert definition.context_param == "context"
    assert definition.params["n"].type == JsonType("integer")


def test_kinds(tools: dict[str, ToolDefinition]) -> None:
    assert tools["plain"].kind is ToolKind.SYNC
    assert tools["stream"].kind is ToolKind.SYNC_STREAM and tools["stream"].streaming
    assert tools["coroutine"].kind is ToolKind.ASYNC and tools["coroutine"].is_async
    assert tools["async_stream"].kind is ToolKind.ASYNC_STREAM
    assert tools["iterable"].kind is ToolKind.SYNC_STREAM
    assert tools["extra"].accepts_extra


def test_decorator_rejects_contradictions() -> None:
    with pytest.raises(TypeError, match="always a streaming tool"):

        @tool(streaming=False)
        def gen(self: Any) -> Iterator[int]:
            yield 1

    with pytest.raises(TypeError, match="async generator"):

        @tool(streaming=True)
        async def coro(self: Any) -> None:
            pass


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def t(self, *args): pass", "cannot be passed by name"),
        ("def t(self, a, /): pass", "cannot be passed by name"),
        ("def t(self, a: 'Missing'): pass", "cannot resolve the annotation 'Missing'"),
        ("def t(): pass", "must take self first"),
    ],
)
def test_unservable_signatures(source: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    cls = type("Bad", (Adapter,), {"t": tool(namespace["t"])})
    with pytest.raises(TypeError, match=message):
        discover_tools(cls)


def test_invalid_and_duplicate_names() -> None:
    with pytest.raises(TypeError, match="invalid tool name"):
        discover_tools(type("Bad", (Adapter,), {"t": tool(name="has space")(lambda self: None)}))
    with pytest.raises(TypeError, match="is used by both"):
        discover_tools(
            type(
                "Dup",
                (Adapter,),
                {
                    "a": tool(name="same")(lambda self: None),
                    "b": tool(name="same")(lambda self: None),
                },
            )
        )


def test_static_methods_are_rejected() -> None:
    with pytest.raises(TypeError, match="plain methods"):
        discover_tools(type("Static", (Adapter,), {"t": staticmethod(tool(lambda: None))}))


def test_inherited_tools_and_overrides() -> None:
    class Base(Adapter):
        @tool
        def a(self) -> int:
            return 1

        @tool
        def b(self) -> int:
            return 1

    class Child(Base):
        def b(self) -> int:  # overriding without @tool removes the tool
            return 2

    assert set(discover_tools(Child)) == {"a"}


def test_bind_injects_context_and_routes_binary(tools: dict[str, ToolDefinition]) -> None:
    ctx = CallContext(request_id=1, tool="injected", worker_id="w")
    assert tools["injected"].bind({"x": 1}, ctx) == {"x": 1, "context": ctx}

    class Bin(Adapter):
        @tool
        def t(self, data: bytes, scale: int = 1) -> None:
            pass

    assert discover_tools(Bin)["t"].bind(b"\x00", ctx) == {"data": b"\x00"}
    with pytest.raises(ToolError) as no_binary:
        tools["injected"].bind(b"\x00", ctx)
    assert no_binary.value.code == "INVALID_ARGUMENTS"


def test_several_bytes_parameters_take_named_arguments_only() -> None:
    class Pair(Adapter):
        @tool
        def t(self, a: bytes, b: memoryview) -> None:
            pass

    definition = discover_tools(Pair)["t"]
    assert definition.binary_param is None
    assert [spec.type for spec in definition.params.values()] == [JsonType("binary"), JsonType("binary")]
    ctx = CallContext(request_id=1, tool="t", worker_id="w")
    assert definition.bind({"a": b"x", "b": b"y"}, ctx) == {"a": b"x", "b": b"y"}
    with pytest.raises(ToolError, match="several bytes parameters") as caught:
        definition.bind(b"\x00", ctx)
    assert caught.value.code == "INVALID_ARGUMENTS"


def test_load_adapter() -> None:
    from snakepit_bridge.examples.showcase import ShowcaseAdapter

    assert load_adapter("snakepit_bridge.examples.showcase:ShowcaseAdapter") is ShowcaseAdapter


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "must be given as 'package.module:Class'"),
        ("a b:C", "must be given as"),
        ("definitely_missing_pkg.mod:C", "'definitely_missing_pkg.mod' not found"),
        ("snakepit_bridge.examples.showcase:Missing", "has no attribute 'Missing'; adapters in it: ShowcaseAdapter"),
        ("snakepit_bridge.examples.showcase:PAGE", "is not an Adapter subclass"),
        ("snakepit_bridge.examples.showcase:CallContext", "is not an Adapter subclass"),
    ],
)
def test_load_adapter_errors(spec: str, message: str) -> None:
    with pytest.raises(AdapterLoadError, match=message.replace("(", r"\(")):
        load_adapter(spec)


def test_inline_is_for_plain_sync_tools_only() -> None:
    class Cheap(Adapter):
        @tool(inline=True)
        def add(self, a: int, b: int) -> int:
            return a + b

    assert discover_tools(Cheap)["add"].inline is True

    with pytest.raises(TypeError, match="inline=True is for plain sync tools only"):

        class Streaming(Adapter):
            @tool(inline=True)
            def count(self) -> Iterator[int]:
                yield 1

    with pytest.raises(TypeError, match="inline=True is for plain sync tools only"):

        class Awaiting(Adapter):
            @tool(inline=True)
            async def wait(self) -> None:
                return None
