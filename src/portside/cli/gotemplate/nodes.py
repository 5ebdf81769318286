"""The parse tree: one node class per construct of Go's ``text/template/parse``.

``str(node)`` prints the node back as template source, as Go's ``String``
methods do, because execution errors quote it (``executing "" at <.X>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portside.cli.gotemplate.strconv import go_quote


@dataclass
class Node:
    pos: int

    def __str__(self) -> str:  # pragma: no cover - every node overrides it
        raise NotImplementedError


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass
class TextNode(Node):
    text: str

    def __str__(self) -> str:
        return go_quote(self.text)


@dataclass
class VariableNode(Node):
    idents: list[str]  # "$x.A.B" is ["$x", "A", "B"]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass
class PipeNode(Node):
    decls: list[VariableNode] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        decl = ", ".join(str(v) for v in self.decls) + " := " if self.decls else ""
        return decl + " | ".join(str(c) for c in self.cmds)


@dataclass
class ActionNode(Node):
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass
class BranchNode(Node):
    keyword: str
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None

    def __str__(self) -> str:
        text = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.body)
        if self.else_body is not None:
            text += "{{else}}" + str(self.else_body)
        return text + "{{end}}"


class IfNode(BranchNode):
    pass


class RangeNode(BranchNode):
    pass


class WithNode(BranchNode):
    pass


@dataclass
class BreakNode(Node):
    def __str__(self) -> str:
        return "{{break}}"


@dataclass
class ContinueNode(Node):
    def __str__(self) -> str:
        return "{{continue}}"


@dataclass
class TemplateNode(Node):
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + go_quote(self.name) + "}}"
        return "{{template " + go_quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class FieldNode(Node):
    idents: list[str]  # ".A.B" is ["A", "B"]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass
class ChainNode(Node):
    node: Node  # "(pipe).A.B": the pipe, then the fields
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return head + "".join("." + f for f in self.fields)


@dataclass
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass
class NumberNode(Node):
    text: str
    int_value: int | None  # set when the constant is an integer (Go's IsInt)
    float_value: float | None  # set when it is a float (Go's IsFloat)

    def __str__(self) -> str:
        return self.text


@dataclass
class StringNode(Node):
    quoted: str  # as written, quotes included
    text: str

    def __str__(self) -> str:
        return self.quoted
