"""Running a parsed template over data, as Go's ``text/template`` executes it.

Actions: ``if``/``else if``, ``range`` (lists, dicts in sorted key order,
ints) with ``break``/``continue``, ``with``/``else with``, variables and
``template``/``block``. Data are looked up as Go looks up a
``map[string]interface{}``: ``.Key`` is a dict key (an attribute on an
object), and a missing key is Go's invalid value, printed ``<no value>``.
Errors carry Go's messages and positions (``template: :1:2: executing ""
at <.X>: ...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from portside.cli.gotemplate.errors import TemplateError
from portside.cli.gotemplate.funcs import BUILTINS, Arg, Func, FuncError, as_func
from portside.cli.gotemplate.gofmt import format_value
from portside.cli.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)
from portside.cli.gotemplate.strconv import go_quote
from portside.cli.gotemplate.values import MISSING, go_type_name, sort_key, truth, utf8

if TYPE_CHECKING:
    from portside.cli.gotemplate.template import Template


def run(template: Template, data: Any) -> str:
    """Run ``template`` over ``data``; raises TemplateError (with ``partial``)."""
    state = _State(template)
    root = MISSING if data is None else data
    state.push("$", root)
    try:
        state.walk(root, template.root)
    except _ExecError as e:
        raise TemplateError(str(e), "".join(state.out)) from None
    except RecursionError:
        raise TemplateError("template: : exceeded maximum template depth", "".join(state.out)) from None
    return "".join(state.out)


_NO_FINAL: Any = object()  # "no value piped in", distinct from a piped-in MISSING


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecError(Exception):
    pass


class _State:
    """One run of a template: the output, the variable stack and the node being run."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []
        self.node: Node | None = None
        self.depth = 0

    # -- errors --

    def errorf(self, message: str) -> NoReturn:
        if self.node is None:
            raise _ExecError(f"template: : {message}")
        text = self.template.text
        pos = self.node.pos
        before = text[:pos]
        line = 1 + before.count("\n")
        col = len(utf8(before[before.rfind("\n") + 1 :]))
        raise _ExecError(f'template: :{line}:{col}: executing "" at <{self.node}>: {message}')

    def at(self, node: Node) -> None:
        self.node = node

    # -- variables --

    def push(self, name: str, value: Any) -> None:
        self.vars.append((name, value))

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for var_name, value in reversed(self.vars):
            if var_name == name:
                return value
        self.errorf(f"undefined variable: {name}")

    # -- walking the tree --

    def walk(self, dot: Any, node: Node) -> None:
        self.at(node)
        if isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decls:
                self.print_value(node, value)
        elif isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        else:  # pragma: no cover - the parser makes no other nodes
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        self.at(node)
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            items = self.range_items(value, node)
            if not items:
                if node.else_body is not None:
                    self.walk(dot, node.else_body)
                return
            # eval_pipeline pushed the range's variables; each iteration sets them.
            body_mark = self.mark()
            names = [decl.idents[0] for decl in node.pipe.decls]
            for index, elem in items:
                if names:
                    self.vars[body_mark - 1] = (names[-1], elem)
                if len(names) > 1:
                    self.vars[body_mark - 2] = (names[0], index)
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    self.pop(body_mark)
        finally:
            self.pop(mark)

    def range_items(self, value: Any, node: RangeNode) -> list[tuple[Any, Any]]:
        """(index or key, element) pairs; a map in sorted key order, an int as 0..n-1."""
        if isinstance(value, (list, tuple)):
            return list(enumerate(value))
        if isinstance(value, dict):
            return [(k, value[k]) for k in sorted(value, key=sort_key)]
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decls) > 1:
                self.errorf(f"can't use {value} to iterate over more than one variable")
            return [(i, i) for i in range(value)]
        if value is MISSING or value is None:
            return []  # Go treats an invalid value like an empty map
        self.errorf(f"range can't iterate over {format_value(value)}")

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.at(node)
        tree = self.template.trees.get(node.name)
        if tree is None:
            self.errorf(f"template {go_quote(node.name)} not defined")
        if self.depth >= 10000:
            self.errorf("exceeded maximum template depth (10000)")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        saved_vars, self.vars = self.vars, [("$", value)]
        self.depth += 1
        try:
            self.walk(value, tree)
        finally:
            self.depth -= 1
            self.vars = saved_vars

    def print_value(self, node: Node, value: Any) -> None:
        self.at(node)
        if value is MISSING:
            self.out.append("<no value>")
            return
        if callable(value) and not isinstance(value, type):
            self.errorf(f"can't print {node} of type {go_type_name(value)}")
        self.out.append(format_value(value))

    # -- evaluating --

    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.at(pipe)
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                # Go digs the value out of an interface{}: a nil one becomes invalid.
                value = MISSING
        for variable in pipe.decls:
            if pipe.is_assign:
                self.set_var(variable.idents[0], value)
            else:
                self.push(variable.idents[0], value)
        return value

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, ChainNode):
            self.at(first)
            if isinstance(first.node, NilNode):
                self.errorf(f"indirection through explicit nil in {first}")
            receiver = self.eval_arg(dot, Arg.VALUE, first.node)
            return self.eval_field_chain(dot, receiver, first, first.fields, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {go_quote(str(first))}")  # pragma: no cover

    def ideal_constant(self, number: NumberNode) -> Any:
        """A number with no type to convert to: the syntax decides, as in Go."""
        self.at(number)
        text = number.text
        is_hex_int = text.lower().startswith(("0x", "-0x", "+0x")) and "p" not in text.lower()
        if (
            number.float_value is not None
            and not is_hex_int
            and not text.startswith("'")
            and any(c in text for c in ".eEpP")
        ):
            return number.float_value
        if number.int_value is not None:
            return number.int_value
        self.errorf(f"{text} overflows int")

    def eval_variable(self, dot: Any, node: VariableNode, args: list[Node], final: Any) -> Any:
        self.at(node)
        value = self.var_value(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.idents[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, idents: list[str], args: list[Node], final: Any
    ) -> Any:
        """``.A.B.C args``: all but the last are plain lookups; the last may be a method call."""
        for i, name in enumerate(idents[:-1]):
            receiver = self.eval_field(dot, name, node, [], _NO_FINAL, receiver, from_lookup=i > 0)
        return self.eval_field(dot, idents[-1], node, args, final, receiver, from_lookup=len(idents) > 1)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: Node,
        args: list[Node],
        final: Any,
        receiver: Any,
        *,
        from_lookup: bool,
    ) -> Any:
        if receiver is MISSING:
            if self.template.missing_key_error:
                self.errorf(f"nil data; no entry for key {go_quote(name)}")
            return MISSING
        # Values found in a map or slice have Go type interface{}, which messages name.
        type_name = "interface {}" if from_lookup or receiver is None else go_type_name(receiver)
        if receiver is None:
            self.errorf(f"nil pointer evaluating {type_name}.{name}")
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name not in receiver and self.template.missing_key_error:
                self.errorf(f"map has no entry for key {go_quote(name)}")
            return receiver.get(name, MISSING)
        if not isinstance(receiver, (str, int, float, bool, list, tuple)) and not name.startswith("_"):
            attr = getattr(receiver, name, MISSING)
            if attr is not MISSING:
                if callable(attr) and not isinstance(attr, type):
                    return self.eval_call(dot, as_func(attr), node, name, args, final)
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return attr
        self.errorf(f"can't evaluate field {name} in type {type_name}")

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node], final: Any) -> Any:
        self.at(node)
        fn = self.template.funcs.get(node.name)
        if fn is None:
            self.errorf(f"{go_quote(node.name)} is not a defined function")
        if node.name in ("and", "or") and fn is BUILTINS[node.name]:
            return self.eval_and_or(dot, node.name, cmd, args, final)
        return self.eval_call(dot, fn, cmd, node.name, args, final)

    def eval_and_or(self, dot: Any, name: str, cmd: Node, args: list[Node], final: Any) -> Any:
        """and/or evaluate their arguments one by one and return the deciding value."""
        self.check_arity(BUILTINS[name], name, args, final)
        value: Any = MISSING
        for arg in args[1:]:
            value = self.eval_arg(dot, Arg.VALUE, arg)
            if truth(value) == (name == "or"):
                return value
        if final is not _NO_FINAL:
            value = final
        return value

    def check_arity(self, fn: Func, name: str, args: list[Node], final: Any) -> int:
        count = len(args) - 1 + (0 if final is _NO_FINAL else 1)
        if fn.variadic is not None:
            if count < len(fn.params):
                self.errorf(
                    f"wrong number of args for {name}: want at least {len(fn.params)} got {len(args) - 1}"
                )
        elif count != len(fn.params):
            self.errorf(f"wrong number of args for {name}: want {len(fn.params)} got {count}")
        return count

    def eval_call(self, dot: Any, fn: Func, node: Node, name: str, args: list[Node], final: Any) -> Any:
        count = self.check_arity(fn, name, args, final)
        argv: list[Any] = []
        for i, arg in enumerate(args[1:]):
            argv.append(self.eval_arg(dot, self.param_kind(fn, i), arg))
        if final is not _NO_FINAL:
            argv.append(self.validate(final, self.param_kind(fn, count - 1)))
        try:
            return fn.fn(*argv)
        except (_ExecError, _Break, _Continue):
            raise
        except Exception as e:  # a function's failure stops the template, as in Go
            self.at(node)
            message = str(e) if isinstance(e, FuncError) else str(e) or type(e).__name__
            self.errorf(f"error calling {name}: {message}")

    @staticmethod
    def param_kind(fn: Func, i: int) -> Arg:
        if i < len(fn.params):
            return fn.params[i]
        return fn.variadic if fn.variadic is not None else Arg.ANY

    def validate(self, value: Any, kind: Arg) -> Any:
        """Go's validateType: may this value be passed as a parameter of this kind?"""
        if kind is Arg.VALUE:
            return value
        if value is MISSING:
            if kind is Arg.ANY:
                return None
            if kind is Arg.STRINGS:
                return []
            self.errorf(f"invalid value; expected {kind.value}")
        if kind is Arg.ANY:
            return value
        ok = {
            Arg.STRING: isinstance(value, str),
            Arg.INT: isinstance(value, int) and not isinstance(value, bool),
            Arg.BOOL: isinstance(value, bool),
            Arg.STRINGS: isinstance(value, (list, tuple)) and all(isinstance(e, str) for e in value),
        }[kind]
        if not ok:
            got = "interface {}" if value is None else go_type_name(value)
            self.errorf(f"wrong type for value; expected {kind.value}; got {got}")
        return list(value) if kind is Arg.STRINGS else value

    def eval_arg(self, dot: Any, kind: Arg, node: Node) -> Any:
        self.at(node)
        if isinstance(node, DotNode):
            return self.validate(dot, kind)
        if isinstance(node, NilNode):
            if kind in (Arg.ANY, Arg.VALUE):
                return None if kind is Arg.ANY else MISSING
            if kind is Arg.STRINGS:
                return []
            self.errorf(f"cannot assign nil to {kind.value}")
        if isinstance(node, FieldNode):
            value = self.eval_field_chain(dot, dot, node, node.idents, [node], _NO_FINAL)
            return self.validate(value, kind)
        if isinstance(node, VariableNode):
            return self.validate(self.eval_variable(dot, node, [], _NO_FINAL), kind)
        if isinstance(node, PipeNode):
            return self.validate(self.eval_pipeline(dot, node), kind)
        if isinstance(node, IdentifierNode):
            return self.validate(self.eval_function(dot, node, node, [node], _NO_FINAL), kind)
        if isinstance(node, ChainNode):
            cmd = CommandNode(node.pos, [node])
            return self.validate(self.eval_command(dot, cmd, _NO_FINAL), kind)
        if kind in (Arg.ANY, Arg.VALUE):
            if isinstance(node, BoolNode):
                return node.value
            if isinstance(node, NumberNode):
                return self.ideal_constant(node)
            if isinstance(node, StringNode):
                return node.text
        if kind is Arg.BOOL and isinstance(node, BoolNode):
            return node.value
        if kind is Arg.STRING and isinstance(node, StringNode):
            return node.text
        if kind is Arg.INT and isinstance(node, NumberNode) and node.int_value is not None:
            return node.int_value
        expected = {Arg.BOOL: "bool", Arg.STRING: "string", Arg.INT: "integer"}.get(kind)
        if expected is None:
            self.errorf(f"can't handle {node} for arg of type {kind.value}")
        self.errorf(f"expected {expected}; found {node}")
