"""GitHub Actions expressions (`${{ ... }}` and `if:`), the part a generated workflow
uses: literals, context paths (`github.sha`, `vars.X`, `secrets.X`,
`needs.<job>.outputs.<name>`, `needs.<job>.result`, `steps.<id>.outputs.<name>`,
`env.X`), `!`, `==`, `!=`, `&&`, `||`, parentheses, and the status functions
`always()`, `success()`, `failure()`, `cancelled()`.

Semantics follow GitHub's documentation: a missing property is null (an empty string
in text), `==` compares strings case-insensitively, `&&`/`||` return an operand, and an
`if:` without a status function means `success() && (...)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!()])"
                   r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*))")
EMBEDDED = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")


class ExpressionError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(f"cannot read {text[position:]!r} in {text!r}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", 0.0)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


class _Parser:
    def __init__(self, text: str, lookup: Callable[[str], Any], status: Mapping[str, bool]):
        self.tokens, self.at, self.lookup, self.status, self.text = _tokens(text), 0, lookup, status, text

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ExpressionError(f"expected {value or 'more'} in {self.text!r}")
        self.at += 1
        return token

    def parse(self) -> Any:
        value = self.either()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return value

    def either(self) -> Any:
        value = self.both()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.both()
            value = value if _truthy(value) else right
        return value

    def both(self) -> Any:
        value = self.comparison()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.comparison()
            value = right if _truthy(value) else value
        return value

    def comparison(self) -> Any:
        value = self.unary()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            right = self.unary()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not _truthy(self.unary())
        return self.atom()

    def atom(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "op" and value == "(":
            inner = self.either()
            self.take(")")
            return inner
        if kind == "name":
            if value in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[value]
            if value in STATUS_FUNCTIONS and self.peek() == ("op", "("):
                self.take("(")
                self.take(")")
                return self.status[value]
            return self.lookup(value)
        raise ExpressionError(f"unexpected {value!r} in {self.text!r}")


def evaluate(text: str, contexts: Mapping[str, Any], status: Mapping[str, bool] | None = None) -> Any:
    """The value of one expression (without `${{ }}`)."""
    def lookup(path: str) -> Any:
        node: Any = contexts
        for part in path.split("."):
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return node

    return _Parser(text, lookup, status or {"always": True, "success": True, "failure": False, "cancelled": False}).parse()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(text: str, contexts: Mapping[str, Any]) -> str:
    """A string with every `${{ ... }}` replaced by its value as text."""
    return EMBEDDED.sub(lambda m: _text(evaluate(m.group(1), contexts)), text)


def condition(text: str | bool | None, contexts: Mapping[str, Any], status: Mapping[str, bool]) -> bool:
    """An `if:` (with or without `${{ }}`); no status function means success() && it."""
    if text is None:
        return status["success"]
    if isinstance(text, bool):
        return text and status["success"]
    inner = EMBEDDED.fullmatch(text.strip())
    expression = inner.group(1) if inner else text
    value = _truthy(evaluate(expression, contexts, status))
    if not any(re.search(rf"\b{name}\s*\(", expression) for name in STATUS_FUNCTIONS):
        value = value and status["success"]
    return value


__all__ = ["evaluate", "substitute", "condition", "ExpressionError"]
