"""extensions.conf loading and the dialplan's expression language.

The parser keeps what Asterisk's pbx_config keeps: contexts, extensions with
numbered, `n` and labelled priorities, patterns, `include =>`, `#include` and
`[globals]`. Substitution (`${...}`, `$[...]`) is evaluated against a channel
through the small `VariableScope` protocol so it can run without a PBX.
"""

from __future__ import annotations

import logging
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("pbxsim.dialplan")


class DialplanError(Exception):
    """A dialplan construct the simulator cannot run; ends the call with an ERROR log line."""


@dataclass
class Priority:
    number: int
    label: str | None
    app: str
    data: str
    source: str  # file:line, for log lines


@dataclass
class Extension:
    name: str
    priorities: dict[int, Priority] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def is_pattern(self) -> bool:
        return self.name.startswith("_")


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)
    _patterns: list[Extension] | None = None

    def patterns(self) -> list[Extension]:
        if self._patterns is None:
            self._patterns = sorted(
                (e for e in self.extensions.values() if e.is_pattern), key=lambda e: _pattern_rank(e.name)
            )
        return self._patterns


def _pattern_classes(pattern: str) -> list[str | None]:
    """Split `_NXX[1-5].` into character classes; None stands for `.` and `!`."""
    out: list[str | None] = []
    i = 1
    while i < len(pattern):
        c = pattern[i]
        if c in "Xx":
            out.append("0123456789")
        elif c in "Zz":
            out.append("123456789")
        elif c in "Nn":
            out.append("23456789")
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                end = len(pattern)
            body = pattern[i + 1 : end]
            chars = []
            j = 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    chars.extend(chr(k) for k in range(ord(body[j]), ord(body[j + 2]) + 1))
                    j += 3
                else:
                    chars.append(body[j])
                    j += 1
            out.append("".join(chars))
            i = end
        elif c in ".!":
            out.append(None if c == "." else "!")
        elif c != "-":
            out.append(c)
        i += 1
    return out


def _pattern_rank(pattern: str) -> list[int]:
    # Asterisk prefers the most specific pattern: fewer candidates per position, wildcards last.
    rank = []
    for cls in _pattern_classes(pattern):
        if cls is None:
            rank.append(10_000)
        elif cls == "!":
            rank.append(10_001)
        else:
            rank.append(len(cls))
    return rank


def pattern_matches(pattern: str, exten: str) -> bool:
    classes = _pattern_classes(pattern)

    def match(ci: int, ei: int) -> bool:
        if ci == len(classes):
            return ei == len(exten)
        cls = classes[ci]
        if cls is None:
            return any(match(ci + 1, k) for k in range(ei + 1, len(exten) + 1))
        if cls == "!":
            return any(match(ci + 1, k) for k in range(ei, len(exten) + 1))
        if ei < len(exten) and exten[ei] in cls:
            return match(ci + 1, ei + 1)
        return False

    return match(0, 0)


class Dialplan:
    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}
        self.globals: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------------

    def load(self, path: str | Path) -> None:
        self._load_file(Path(path), None, set())

    def _load_file(self, path: Path, context: Context | None, seen: set[Path]) -> Context | None:
        path = path.resolve()
        if path in seen:
            raise DialplanError(f"{path}: #include loop")
        seen = seen | {path}
        text = path.read_text(encoding="utf-8", errors="replace")
        last_exten: Extension | None = None
        last_prio = 0
        section = context.name if context else None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = _strip_comment(raw).strip()
            if not line:
                continue
            where = f"{path.name}:{lineno}"
            if line.startswith("#include"):
                target = line[len("#include") :].strip().strip('"').strip("<>").strip()
                context = self._load_file(path.parent / target, context, seen)
                section = context.name if context else section
                last_exten = None
                continue
            if line.startswith("["):
                name = line[1 : line.index("]")] if "]" in line else line[1:]
                section = name.strip()
                context = None
                if section not in ("general", "globals"):
                    context = self.contexts.setdefault(section, Context(section))
                last_exten = None
                continue
            raw_key, sep, value = line.partition("=")
            if not sep:
                log.warning("%s: ignoring line without '=': %s", where, line)
                continue
            key = raw_key.strip().lower()
            value = value[1:] if value.startswith(">") else value
            value = value.strip()
            if section == "globals":
                self.globals[raw_key.strip()] = value
                continue
            if context is None:
                continue
            if key == "include":
                context.includes.append(value.split(",")[0].strip())
            elif key in ("exten", "same"):
                if key == "exten":
                    name, _, rest = value.partition(",")
                    name = name.strip()
                    if "/" in name and not name.startswith("_"):
                        name = name.split("/")[0]  # caller-id matching is not supported; match on exten
                    last_exten = context.extensions.setdefault(name, Extension(name))
                    context._patterns = None
                    last_prio = 0
                else:
                    if last_exten is None:
                        raise DialplanError(f"{where}: 'same =>' without a preceding 'exten =>'")
                    rest = value
                prio_text, _, app_text = rest.partition(",")
                prio_text = prio_text.strip()
                if prio_text.lower() == "hint":
                    continue
                label = None
                m = re.fullmatch(r"([^()]+)(?:\(([^)]*)\))?", prio_text)
                if not m:
                    raise DialplanError(f"{where}: bad priority {prio_text!r}")
                base, label = m.group(1).strip(), m.group(2)
                if base == "n":
                    number = last_prio + 1
                elif base.startswith("n+"):
                    number = last_prio + int(base[2:])
                elif base == "s":
                    number = last_prio
                else:
                    number = int(base)
                app, data = _split_app(app_text.strip())
                last_exten.priorities[number] = Priority(number, label, app, data, where)
                if label:
                    last_exten.labels[label] = number
                last_prio = number
        return context

    # -- lookup ----------------------------------------------------------------------------------

    def find_extension(self, context: str, exten: str) -> Extension | None:
        return self._find(context, exten, set())

    def _find(self, context: str, exten: str, seen: set[str]) -> Extension | None:
        ctx = self.contexts.get(context)
        if ctx is None or context in seen:
            return None
        seen.add(context)
        ext = ctx.extensions.get(exten)
        if ext is not None and not ext.is_pattern:
            return ext
        for pat in ctx.patterns():
            if pattern_matches(pat.name, exten):
                return pat
        for inc in ctx.includes:
            found = self._find(inc, exten, seen)
            if found is not None:
                return found
        return None

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        ext = self.find_extension(context, exten)
        return ext is not None and priority in ext.priorities

    def resolve_priority(self, context: str, exten: str, priority: str) -> int | None:
        priority = priority.strip()
        if priority.lstrip("-").isdigit():
            return int(priority)
        ext = self.find_extension(context, exten)
        if ext is None:
            return None
        return ext.labels.get(priority)


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if c == ";":
            break
        out.append(c)
        i += 1
    return "".join(out)


def _split_app(text: str) -> tuple[str, str]:
    if "(" in text:
        name, _, rest = text.partition("(")
        if rest.endswith(")"):
            rest = rest[:-1]
        return name.strip(), rest
    name, _, rest = text.partition(",")
    return name.strip(), rest


# -- argument helpers -----------------------------------------------------------------------------


def split_args(data: str, sep: str = ",", *, remove_quotes: bool = False) -> list[str]:
    """Split application arguments on `sep`, honouring quotes, backslashes and brackets.

    `remove_quotes`: drop every unescaped double quote, as Asterisk does to an Originate's
    `Variable:` values (`C2C_CALLERID="Banner" <5550100>` arrives as `Banner <5550100>`)."""
    args: list[str] = []
    cur: list[str] = []
    depth = 0
    quote = False
    i = 0
    while i < len(data):
        c = data[i]
        if c == "\\" and i + 1 < len(data):
            cur.append(data[i + 1])
            i += 2
            continue
        if c == '"':
            quote = not quote
            if remove_quotes:
                i += 1
                continue
        elif not quote and c in "([{":
            depth += 1
        elif not quote and c in ")]}" and depth:
            depth -= 1
        if c == sep and not quote and depth == 0:
            args.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    args.append("".join(cur))
    return [a.strip('"') if a.startswith('"') and a.endswith('"') and len(a) > 1 else a for a in args]


# -- substitution ---------------------------------------------------------------------------------


class VariableScope:
    """What substitution needs from a channel (or from the globals alone)."""

    def get_variable(self, name: str) -> str | None:  # pragma: no cover - protocol
        raise NotImplementedError

    def call_function(self, name: str, args: str) -> str:  # pragma: no cover - protocol
        raise NotImplementedError


def substitute(text: str, scope: VariableScope) -> str:
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n and text[i + 1] in "{[":
            opener = text[i + 1]
            closer = "}" if opener == "{" else "]"
            end = _matching(text, i + 2, opener, closer)
            inner = substitute(text[i + 2 : end], scope)
            if opener == "{":
                out.append(_expand_variable(inner, scope))
            else:
                out.append(evaluate_expression(inner))
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _matching(text: str, start: int, opener: str, closer: str) -> int:
    depth = 1
    i = start
    while i < len(text):
        c = text[i]
        if c == "$" and i + 1 < len(text) and text[i + 1] in "{[":
            # nested ${ or $[ : skip over it whole
            inner_closer = "}" if text[i + 1] == "{" else "]"
            i = _matching(text, i + 2, text[i + 1], inner_closer) + 1
            continue
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)


def _expand_variable(expr: str, scope: VariableScope) -> str:
    offset = length = None
    if "(" in expr:
        name, _, rest = expr.partition("(")
        close = _close_paren(rest)
        args, tail = rest[:close], rest[close + 1 :]
        value = scope.call_function(name.strip(), args)
        if tail.startswith(":"):
            offset, length = _parse_substring(tail[1:])
    else:
        name, _, tail = expr.partition(":")
        value = scope.get_variable(name) or ""
        if _:
            offset, length = _parse_substring(tail)
    if offset is not None:
        value = _substring(value, offset, length)
    return value


def _close_paren(text: str) -> int:
    depth = 1
    for i, c in enumerate(text):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def _parse_substring(text: str) -> tuple[int, int | None]:
    off, _, ln = text.partition(":")
    try:
        offset = int(off) if off.strip() else 0
        length = int(ln) if ln.strip() else None
    except ValueError:
        return 0, None
    return offset, length


def _substring(value: str, offset: int, length: int | None) -> str:
    if offset < 0:
        offset = max(len(value) + offset, 0)
    value = value[offset:]
    if length is None:
        return value
    if length < 0:
        return value[:length] if -length < len(value) else ""
    return value[:length]


# -- $[ ... ] expressions (ast_expr2) ------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>=~|!=|<=|>=|==|::|\|\||&&|[-+*/%()<>=!|&?:])|(?P<word>[^\s()<>=!|&?:*/%+"-]+(?:-[^\s()<>=!|&?:*/%+"-]+)*))'
)


_NUMERIC_DIFFERENCE = re.compile(r"^\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)+$")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            tokens.append(("word", text[pos]))
            pos += 1
            continue
        pos = m.end()
        if m.group("str") is not None:
            tokens.append(("word", m.group("str")[1:-1].replace('\\"', '"')))
        elif m.group("op") is not None:
            tokens.append(("op", m.group("op")))
        elif m.group("word") is not None:
            word = m.group("word")
            if _NUMERIC_DIFFERENCE.match(word):
                # `5-3` is a subtraction; `call-1-1` stays a word
                parts = word.split("-")
                tokens.append(("word", parts[0]))
                for part in parts[1:]:
                    tokens += [("op", "-"), ("word", part)]
            else:
                tokens.append(("word", word))
    return tokens


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _truthy(value: str) -> bool:
    n = _num(value)
    if n is not None:
        return n != 0
    return value != ""


class _ExprParser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "op":
            return self.tokens[self.pos][1]
        return None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> str:
        if not self.tokens:
            return ""
        value = self.conditional()
        # Asterisk concatenates leftover juxtaposed tokens as a string
        while self.pos < len(self.tokens):
            value += " " + self.take()[1]
        return value

    def conditional(self) -> str:
        cond = self.logical_or()
        if self.peek() == "?":
            self.take()
            yes = self.conditional()
            if self.peek() == "::":
                self.take()
                no = self.conditional()
            else:
                no = ""
            return yes if _truthy(cond) else no
        return cond

    def logical_or(self) -> str:
        left = self.logical_and()
        while self.peek() in ("|", "||"):
            self.take()
            right = self.logical_and()
            left = left if _truthy(left) else (right if _truthy(right) else "0")
        return left

    def logical_and(self) -> str:
        left = self.comparison()
        while self.peek() in ("&", "&&"):
            self.take()
            right = self.comparison()
            left = left if (_truthy(left) and _truthy(right)) else "0"
        return left

    _CMP = {
        "=": operator.eq,
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        ">": operator.gt,
        "<=": operator.le,
        ">=": operator.ge,
    }

    def comparison(self) -> str:
        left = self.additive()
        while self.peek() in self._CMP:
            op = self._CMP[self.take()[1]]
            right = self.additive()
            a, b = _num(left), _num(right)
            result = op(a, b) if a is not None and b is not None else op(left, right)
            left = "1" if result else "0"
        return left

    def additive(self) -> str:
        left = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.multiplicative()
            a, b = _num(left) or 0.0, _num(right) or 0.0
            left = _fmt(a + b if op == "+" else a - b)
        return left

    def multiplicative(self) -> str:
        left = self.regex()
        while self.peek() in ("*", "/", "%"):
            op = self.take()[1]
            right = self.regex()
            a, b = _num(left) or 0.0, _num(right) or 0.0
            if op == "*":
                left = _fmt(a * b)
            elif b == 0:
                left = "0"
            elif op == "/":
                left = _fmt(a / b)
            else:
                left = _fmt(a % b)
        return left

    def regex(self) -> str:
        left = self.unary()
        while self.peek() in (":", "=~"):
            op = self.take()[1]
            right = self.unary()
            try:
                m = re.match(right, left) if op == ":" else re.search(right, left)
            except re.error:
                m = None
            if m is None:
                left = "" if re.compile(right).groups else "0"
            elif m.groups():
                left = m.group(1) or ""
            else:
                left = str(m.end() - m.start())
        return left

    def unary(self) -> str:
        op = self.peek()
        if op == "-":
            self.take()
            value = self.unary()
            n = _num(value)
            return _fmt(-n) if n is not None else "-" + value
        if op == "!":
            self.take()
            return "0" if _truthy(self.unary()) else "1"
        return self.primary()

    def primary(self) -> str:
        if self.pos >= len(self.tokens):
            return ""
        kind, value = self.take()
        if kind == "op" and value == "(":
            inner = self.conditional()
            if self.peek() == ")":
                self.take()
            return inner
        return value


def evaluate_expression(text: str) -> str:
    try:
        return _ExprParser(_tokenize(text)).parse()
    except (IndexError, ValueError, re.error) as exc:
        log.warning("bad expression $[%s]: %s", text, exc)
        return ""


def truthy(value: str) -> bool:
    """Dialplan truth as GotoIf and IF() see it: non-empty and not zero."""
    value = value.strip()
    return _truthy(value)
