"""Tokens to parse trees, with the grammar and error messages of Go's parser.

A template parses into several trees: the main one, named ``""``, and one
for each ``define`` or ``block``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NoReturn

from portside.cli.gotemplate.errors import TemplateError
from portside.cli.gotemplate.lexer import T, Token, lex
from portside.cli.gotemplate.nodes import (
    ActionNode,
    BoolNode,
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
from portside.cli.gotemplate.strconv import go_quote, go_unquote, parse_float, parse_int


def parse_trees(text: str, funcs: Mapping[str, Any]) -> dict[str, ListNode]:
    """The trees of ``text`` by name; ``funcs`` are the names a template may call."""
    return _Parser(text, funcs).parse()


# {{end}} and {{else}} never reach a tree: item_list returns them to tell its
# caller how a list ended.
class _End(Node):
    def __str__(self) -> str:
        return "{{end}}"


class _Else(Node):
    def __str__(self) -> str:
        return "{{else}}"


class _Parser:
    """Recursive descent over the token list, with the grammar and errors of Go's parser."""

    def __init__(self, text: str, funcs: Mapping[str, Any]) -> None:
        self.funcs = funcs
        self.tokens = lex(text, break_ok="break" not in funcs, continue_ok="continue" not in funcs)
        self.index = 0
        self.furthest = 0  # the last token read, whose line parse errors report
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.trees: dict[str, ListNode] = {}

    # -- token stream --

    def next(self) -> Token:
        token = self.tokens[min(self.index, len(self.tokens) - 1)]
        self.index += 1
        self.furthest = max(self.furthest, self.index - 1)
        return token

    def backup(self, n: int = 1) -> None:
        self.index -= n

    def peek(self) -> Token:
        token = self.next()
        self.backup()
        return token

    def next_non_space(self) -> Token:
        token = self.next()
        while token.typ is T.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        """The next non-space token; like Go, the spaces before it are consumed."""
        token = self.next_non_space()
        self.backup()
        return token

    # -- errors --

    def errorf(self, message: str) -> NoReturn:
        line = self.tokens[min(self.furthest, len(self.tokens) - 1)].line
        raise TemplateError(f"template: :{line}: {message}")

    def unexpected(self, token: Token, context: str) -> NoReturn:
        if token.typ is T.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != token.line:
                extra = f" in action started at :{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.errorf(f"{token}{extra}")
        self.errorf(f"unexpected {token} in {context}")

    def expect(self, typ: T, context: str) -> Token:
        token = self.next_non_space()
        if token.typ is not typ:
            self.unexpected(token, context)
        return token

    # -- grammar --

    def parse(self) -> dict[str, ListNode]:
        root = ListNode(self.peek().pos)
        while self.peek().typ is not T.EOF:
            if self.peek().typ is T.LEFT_DELIM:
                delim_index = self.index
                self.next()
                if self.next_non_space().typ is T.DEFINE:
                    self.parse_definition()
                    continue
                self.index = delim_index
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.trees[""] = root
        return self.trees

    def parse_definition(self) -> None:
        context = "define clause"
        name = self.template_name(self.next_non_space(), context)
        self.expect(T.RIGHT_DELIM, context)
        self.named_tree(name, context)

    def named_tree(self, name: str, context: str) -> None:
        """The body of a define or block, up to its {{end}}; its variables start afresh."""
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.trees[name] = body

    def item_list(self) -> tuple[ListNode, Node]:
        nodes = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not T.EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return nodes, node
            nodes.nodes.append(node)
        self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ is T.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ is T.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(token, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        if token.typ is T.BLOCK:
            return self.block_control()
        if token.typ is T.BREAK:
            return self.loop_control(BreakNode(token.pos), "{{break}}")
        if token.typ is T.CONTINUE:
            return self.loop_control(ContinueNode(token.pos), "{{continue}}")
        if token.typ is T.ELSE:
            return self.else_control()
        if token.typ is T.END:
            return _End(self.expect(T.RIGHT_DELIM, "end").pos)
        if token.typ is T.IF:
            return IfNode(*self.parse_control("if"))
        if token.typ is T.RANGE:
            return RangeNode(*self.parse_control("range"))
        if token.typ is T.TEMPLATE:
            return self.template_control()
        if token.typ is T.WITH:
            return WithNode(*self.parse_control("with"))
        self.backup()
        token = self.peek()
        return ActionNode(token.pos, self.pipeline("command", T.RIGHT_DELIM))

    def loop_control(self, node: Node, context: str) -> Node:
        token = self.next_non_space()
        if token.typ is not T.RIGHT_DELIM:
            self.unexpected(token, context)
        if self.range_depth == 0:
            self.errorf(f"{context} outside {{{{range}}}}")
        return node

    def pipeline(self, context: str, end: T) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos)
        self.declarations(pipe, context)
        while True:
            token = self.next_non_space()
            if token.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in (
                T.BOOL, T.CHAR_CONSTANT, T.COMPLEX, T.DOT, T.FIELD, T.IDENTIFIER,
                T.NUMBER, T.NIL, T.RAW_STRING, T.STRING, T.VARIABLE, T.LEFT_PAREN,
            ):  # fmt: skip
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(token, context)

    def declarations(self, pipe: PipeNode, context: str) -> None:
        """``$x :=``, ``$x =`` or, in a range, ``$i, $e :=`` before the commands."""
        while True:
            v = self.peek_non_space()
            if v.typ is not T.VARIABLE:
                return
            start = self.index
            self.next()
            following = self.peek_non_space()
            if following.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = following.typ is T.ASSIGN
                self.next_non_space()
                pipe.decls.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                return
            if following.typ is T.CHAR and following.val == ",":
                self.next_non_space()
                pipe.decls.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decls) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue  # the second variable of a range
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            # Not a declaration: "$x" is the first operand.
            self.index = start
            return

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i}")

    def parse_control(self, context: str) -> tuple[int, str, PipeNode, ListNode, ListNode | None]:
        saved_vars = len(self.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, next_node = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_body: ListNode | None = None
            if isinstance(next_node, _Else):
                # "{{if a}}x{{else if b}}y{{end}}" is "{{if a}}x{{else}}{{if b}}y{{end}}{{end}}":
                # the nested if (or with, for "else with") consumes the only {{end}}.
                chained = {"if": (T.IF, IfNode), "with": (T.WITH, WithNode)}.get(context)
                if chained is not None and self.peek().typ is chained[0]:
                    self.next()
                    nested = chained[1](*self.parse_control(context))
                    else_body = ListNode(next_node.pos, [nested])
                else:
                    else_body, end = self.item_list()
                    if not isinstance(end, _End):
                        self.errorf(f"expected end; found {end}")
            return pipe.pos, context, pipe, body, else_body
        finally:
            del self.vars[saved_vars:]

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in (T.IF, T.WITH):
            # "{{else if ...": the if (or with) is left for the enclosing control to parse.
            return _Else(peek.pos)
        return _Else(self.expect(T.RIGHT_DELIM, "else").pos)

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        self.named_tree(name, context)
        return TemplateNode(token.pos, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ is not T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(token.pos, name, pipe)

    def template_name(self, token: Token, context: str) -> str:
        if token.typ not in (T.STRING, T.RAW_STRING):
            self.unexpected(token, context)
        return self.unquote(token)

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ is T.SPACE:
                continue
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif token.typ is not T.PIPE:
                self.unexpected(token, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ is T.FIELD:
            chain = ChainNode(self.peek().pos, node)
            while self.peek().typ is T.FIELD:
                chain.fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, node.idents + chain.fields)
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, node.idents + chain.fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {go_quote(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ is T.IDENTIFIER:
            if token.val not in self.funcs:
                self.errorf(f"function {go_quote(token.val)} not defined")
            return IdentifierNode(token.pos, token.val)
        if typ is T.DOT:
            return DotNode(token.pos)
        if typ is T.NIL:
            return NilNode(token.pos)
        if typ is T.VARIABLE:
            return self.use_var(token)
        if typ is T.FIELD:
            return FieldNode(token.pos, [token.val[1:]])
        if typ is T.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            return self.number(token)
        if typ is T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if typ in (T.STRING, T.RAW_STRING):
            return StringNode(token.pos, token.val, self.unquote(token))
        self.backup()
        return None

    def use_var(self, token: Token) -> VariableNode:
        name = token.val.split(".")[0]
        if name not in self.vars:
            self.errorf(f"undefined variable {go_quote(name)}")
        return VariableNode(token.pos, [token.val])

    def unquote(self, token: Token) -> str:
        try:
            return go_unquote(token.val)
        except ValueError as e:
            self.errorf(str(e))

    def char_constant(self, text: str) -> str:
        """'a', '\\n', '\\u00e9': one rune, or Go's error for what follows the first."""
        try:
            return go_unquote(text)
        except ValueError:
            pass
        # Unquote the first rune alone to tell "invalid syntax" from trailing junk.
        end = 2
        if text[1:2] == "\\":
            end = 3 + {"x": 2, "u": 4, "U": 8}.get(text[2:3], 2 if text[2:3] in "01234567" else 0)
        try:
            go_unquote("'" + text[1:end] + "'")
        except ValueError:
            self.errorf("invalid syntax")
        self.errorf(f"malformed character constant: {text}")

    def number(self, token: Token) -> NumberNode:
        text = token.val
        if token.typ is T.COMPLEX or text.endswith("i"):
            self.errorf(f"complex constants are not supported: {text}")
        if token.typ is T.CHAR_CONSTANT:
            rune = self.char_constant(text)
            return NumberNode(token.pos, text, ord(rune), float(ord(rune)))
        int_value = parse_int(text)
        if int_value is not None:
            return NumberNode(token.pos, text, int_value, float(int_value))
        float_value = parse_float(text)
        if float_value is None:
            self.errorf(f"illegal number syntax: {go_quote(text)}")
        if not any(c in text for c in ".eEpP"):
            self.errorf(f"integer overflow: {go_quote(text)}")
        is_integral = math.isfinite(float_value) and float_value == int(float_value)
        as_int = int(float_value) if is_integral and abs(float_value) < 2**63 else None
        return NumberNode(token.pos, text, as_int, float_value)
