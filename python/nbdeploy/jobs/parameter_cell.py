"""Reading a notebook's ``parameters`` cell the way papermill does, with bounded work.

Papermill's Python translator reads the cell line by line — ``name: type = default  # help`` or
``name = default  # type: T help`` — so a cell that does not parse as a whole (a stray syntax error) still
lists its parameters. :func:`read_parameters` does the same with Python's tokenizer instead of papermill's
regular expression, which keeps what papermill finds and fixes what it misreads:

- one statement per parameter, multi-line values (brackets, backslashes) included, ``a = 1; b = 2`` as two;
  a ``#`` or ``=`` inside a string is part of the string;
- the help is the comment after the statement (``# type: T`` first, when there is one, declares the type;
  ``# type: ignore`` declares nothing); comments inside a multi-line value are dropped;
- the default is the value's source, its lines joined without their indentation (papermill's ``['a','b']``);
- only top-level assignments count (not those inside ``if``/``def`` blocks), and not chained (``a = b = 1``),
  tuple (``a, b = …``) or augmented (``a += 1``) ones;
- beyond papermill, an un-annotated literal default gives an *inferred* type (``x = 1`` → ``int``), kept apart
  from a *declared* one (annotation or type comment), see :attr:`Parameter.type_source`.

The cell is read with bounded CPU and memory (well under a second for the largest cell allowed): at most
:data:`MAX_CELL_CHARS` characters, brackets nested at most :data:`MAX_NESTING` deep, no NUL character, and no
code Python's own compiler cannot take (``x = ----…1``) — each refused with an
:class:`~nbdeploy.exceptions.InvalidInputError` naming the cell's field. Python's C parser finds the syntax
errors to read around, so the tokenizer only sees lines it reads in linear time.

Deliberate differences from papermill: ``d = a == 3`` is a parameter here (papermill skips any line with two
``=``), a type comment's type may hold spaces (``# type: Dict[str, int]``), ``x: int`` without a value is a
(declared) parameter, and statements inside blocks are not.
"""

from __future__ import annotations

import ast
import keyword
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

from ..exceptions import InvalidInputError

__all__ = ["MAX_CELL_CHARS", "MAX_NESTING", "TYPE_SOURCES", "Parameter", "read_parameters"]

MAX_CELL_CHARS = 32_768
MAX_NESTING = 100
_MAX_PARTS = 16  # reading goes around at most this many syntax errors
TYPE_SOURCES = ("declared", "inferred", "unknown")
_INFERABLE = ("bool", "int", "float", "str", "list", "dict", "tuple")
_OPEN, _CLOSE = "([{", ")]}"
_SKIP = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)


@dataclass(frozen=True)
class Parameter:
    """A parameter of a job, as read from its notebook's ``parameters`` cell.

    ``inferred_type_name`` is papermill's field: the declared type's source (``"int"``, ``"List[str]"``), the
    type inferred from a literal default, or ``"None"`` when unknown. ``type_source`` says which:
    ``"declared"`` (an annotation or a ``# type:`` comment: values are checked strictly), ``"inferred"``
    (from the default: values of another type run with a warning) or ``"unknown"``. Versions stored before
    ``type_source`` existed get it derived from the type name.
    """

    name: str
    inferred_type_name: str
    default: str
    help: str
    type_source: str = ""

    def __post_init__(self) -> None:
        if self.type_source not in TYPE_SOURCES:
            if self.inferred_type_name in ("None", ""):
                derived = "unknown"
            elif self.inferred_type_name in _INFERABLE:
                derived = "inferred"  # a stored version cannot tell `n: int = 3` from `n = 3`: the lenient reading
            else:
                derived = "declared"
            object.__setattr__(self, "type_source", derived)

    @property
    def declared(self) -> bool:
        """Whether the notebook declares this parameter's type (annotation or ``# type:`` comment)."""
        return self.type_source == "declared"

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict: papermill's ``inspect_notebook`` keys plus ``type_source``."""
        return {
            "name": self.name,
            "inferred_type_name": self.inferred_type_name,
            "default": self.default,
            "help": self.help,
            "type_source": self.type_source,
        }


def read_parameters(source: str, field: str = "parameters") -> dict[str, Parameter]:
    """Return the parameters assigned in ``source`` (a parameters cell), in order of first assignment.

    A name assigned twice keeps its first position and its last definition (what the kernel ends up with).
    Raises :class:`InvalidInputError` (``field`` naming the cell) for a cell over :data:`MAX_CELL_CHARS`,
    brackets nested deeper than :data:`MAX_NESTING`, or code too deeply nested for Python to compile.
    """
    if not isinstance(source, str):
        raise InvalidInputError("the parameters cell's source must be text", field)
    if len(source) > MAX_CELL_CHARS:
        raise InvalidInputError(
            f"the parameters cell is {len(source):,} characters long; the limit is {MAX_CELL_CHARS:,}: keep only "
            "the parameter assignments in it and load data in a later cell",
            field,
        )
    if "\x00" in source:
        raise InvalidInputError("the parameters cell holds a NUL character, which Python cannot run: remove it", field)
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    params: dict[str, Parameter] = {}
    for first, last in _readable_parts(lines, field):
        part = lines[first:last]
        for tokens in _statements(part, first, field):
            param = _parameter(tokens, part)
            if param is not None:
                params[param.name] = param
    return params


def _readable_parts(lines: list[str], field: str) -> Iterator[tuple[int, int]]:
    """Yield the ``(first, last)`` line ranges Python's own parser reads through: the whole cell when it parses,
    else the lines before each syntax error. The line in error and the indented lines after it are skipped and
    reading goes on at the next top-level line — papermill's line-by-line reading, with the C parser finding
    the lines to skip, so that the tokenizer only sees lines Python can tokenize (the pure-Python tokenizer
    takes quadratic time on some broken lines, such as an unterminated string full of escaped quotes).

    Raises :class:`InvalidInputError` for code that overflows Python's parser or nests brackets too deeply.
    """
    first = 0
    for _ in range(_MAX_PARTS):
        try:
            ast.parse("\n".join(lines[first:]))
        except (RecursionError, MemoryError) as exc:
            raise InvalidInputError(
                "the parameters cell is nested too deeply for Python to compile (e.g. thousands of operators in a "
                "row): write each parameter as a plain value such as `x = 1`",
                field,
            ) from exc
        except SyntaxError as exc:
            if "too many nested parentheses" in str(exc.msg):
                raise InvalidInputError(_nesting_message(first + (exc.lineno or 1)), field) from exc
            if not exc.lineno:
                return
            bad = first + exc.lineno - 1
            if bad > first:
                yield first, bad
            first = bad + 1
            while first < len(lines) and (not lines[first].strip() or lines[first][:1].isspace()):
                first += 1  # the broken statement's indented block
            if first >= len(lines):
                return
            continue
        except ValueError:  # what else Python refuses to read: nothing past it is read
            return
        yield first, len(lines)
        return


def _nesting_message(line: int) -> str:
    return (
        f"line {line} of the parameters cell nests brackets more than {MAX_NESTING} deep: write each parameter as "
        "a plain value, or load nested data in a later cell"
    )


def _statements(lines: list[str], offset: int, field: str) -> Iterator[list[tokenize.TokenInfo]]:
    """Yield the tokens of each top-level statement of ``lines`` (``;`` splits statements); positions are
    relative to ``lines``, whose first line is line ``offset + 1`` of the cell. A statement the lines end in
    the middle of is dropped."""
    current: list[tokenize.TokenInfo] = []
    level = depth = 0
    try:
        for tok in tokenize.generate_tokens(iter([line + "\n" for line in lines]).__next__):
            kind = tok.type
            if kind == tokenize.INDENT:
                level += 1
            elif kind == tokenize.DEDENT:
                level -= 1
            elif kind == tokenize.NEWLINE or kind == tokenize.ENDMARKER or (tok.string == ";" and depth == 0):
                if level == 0 and current:
                    yield current
                current = []
            elif (kind == tokenize.NL or kind == tokenize.COMMENT) and not current:
                continue  # blank and comment-only lines between statements
            else:
                if kind == tokenize.OP and tok.string in _OPEN:
                    depth += 1
                    if depth > MAX_NESTING:
                        raise InvalidInputError(_nesting_message(offset + tok.start[0]), field)
                elif kind == tokenize.OP and tok.string in _CLOSE:
                    depth = max(0, depth - 1)
                current.append(tok)
    except (tokenize.TokenError, SyntaxError):  # the lines end inside a statement (cut before a syntax error)
        return


def _parameter(tokens: list[tokenize.TokenInfo], lines: list[str]) -> Parameter | None:
    """The parameter one statement assigns, or ``None`` when it is not ``name [: type] [= value]``."""
    significant = [t for t in tokens if t.type not in _SKIP]
    if len(significant) < 2:
        return None
    target, sep = significant[0], significant[1]
    if target.type != tokenize.NAME or keyword.iskeyword(target.string) or sep.type != tokenize.OP:
        return None
    annotation: list[tokenize.TokenInfo] = []
    value: list[tokenize.TokenInfo] | None
    if sep.string == "=":
        value = significant[2:]
    elif sep.string == ":":
        equals = _top_level(significant, 2, "=")
        annotation = significant[2:equals] if equals is not None else significant[2:]
        value = significant[equals + 1 :] if equals is not None else None
        if not annotation:
            return None
    else:
        return None
    if value is not None and (not value or _top_level(value, 0, "=") is not None):
        return None  # `x =` (a syntax error) or a chained assignment
    type_name = _source_of(annotation, lines) if annotation else ""
    if len(annotation) == 1 and annotation[0].type == tokenize.STRING:
        type_name = _unquote(annotation[0].string) or type_name
    comment = _trailing_comment(tokens, significant[-1])
    help_text = comment
    if comment.startswith("type:"):
        declared, help_text = _split_type_comment(comment[5:])
        if not annotation and declared:
            type_name = declared
    if type_name:
        type_source = "declared"
    else:
        type_name = _literal_type(value) or "None"
        type_source = "inferred" if type_name != "None" else "unknown"
    default = _source_of(value, lines) if value is not None else "None"
    return Parameter(target.string, type_name, default, help_text, type_source)


def _top_level(tokens: list[tokenize.TokenInfo], start: int, op: str) -> int | None:
    """Index of the first ``op`` token outside brackets, from ``start``; ``None`` when there is none."""
    depth = 0
    for i in range(start, len(tokens)):
        tok = tokens[i]
        if tok.type != tokenize.OP:
            continue
        if tok.string in _OPEN:
            depth += 1
        elif tok.string in _CLOSE:
            depth -= 1
        elif tok.string == op and depth == 0:
            return i
    return None


def _trailing_comment(tokens: list[tokenize.TokenInfo], last: tokenize.TokenInfo) -> str:
    """The text of the comment on the statement's last line, after its last token (without the ``#``)."""
    for tok in tokens:
        if tok.type == tokenize.COMMENT and tok.start[0] == last.end[0] and tok.start[1] >= last.end[1]:
            return tok.string[1:].strip()
    return ""


def _split_type_comment(text: str) -> tuple[str, str]:
    """``" List[str] Nice list"`` → ``("List[str]", "Nice list")``; ``ignore`` declares no type."""
    text = text.lstrip()
    depth = 0
    for i, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char.isspace() and depth <= 0:
            type_text, rest = text[:i], text[i:].strip()
            break
    else:
        type_text, rest = text, ""
    if type_text == "ignore" or type_text.startswith("ignore["):
        return "", rest
    return type_text, rest


def _source_of(tokens: list[tokenize.TokenInfo], lines: list[str]) -> str:
    """The source of ``tokens`` with comments dropped and its lines joined without their indentation."""
    pieces: list[str] = []
    run_start = tokens[0].start
    for tok, nxt in zip(tokens, [*tokens[1:], None], strict=True):
        if nxt is not None and nxt.start[0] == tok.end[0]:
            continue
        piece = _slice(lines, run_start, tok.end)
        if pieces and _word_char(pieces[-1][-1:]) and _word_char(piece[:1]):
            pieces.append(" ")
        pieces.append(piece)
        if nxt is not None:
            run_start = nxt.start
    return "".join(pieces).strip()


def _word_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_")


def _slice(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (row0, col0), (row1, col1) = start, end
    if row0 == row1:
        return lines[row0 - 1][col0:col1]
    return "\n".join([lines[row0 - 1][col0:], *lines[row0 : row1 - 1], lines[row1 - 1][:col1]])


def _unquote(text: str) -> str | None:
    """The text of a plain string literal token (``"NoneType"`` → ``NoneType``); ``None`` for anything else."""
    if text[:1] not in "\"'" or len(text) > 256:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value.strip() if isinstance(value, str) else None


def _literal_type(value: list[tokenize.TokenInfo] | None) -> str | None:
    """The type a default evaluates to, when its tokens alone tell (``1`` → int, ``[…]`` → list, ``"a"`` →
    str); ``None`` for anything else, ``None`` included. No evaluation: bounded by the tokens' count."""
    tokens = value or []
    while len(tokens) >= 2 and tokens[0].string == "(" and _closing(tokens, 0) == len(tokens) - 1:
        if _top_level(tokens[1:-1], 0, ",") is not None or len(tokens) == 2:
            return "tuple"
        tokens = tokens[1:-1]  # a parenthesised expression
    if not tokens:
        return None
    first = tokens[0]
    if len(tokens) == 2 and first.string in "+-" and first.type == tokenize.OP:
        tokens, first = tokens[1:], tokens[1]
        if first.type != tokenize.NUMBER:
            return None
    if len(tokens) == 1 and first.type == tokenize.NUMBER:
        text = first.string.lower()
        if text.endswith("j"):
            return None
        if text.startswith(("0x", "0o", "0b")) or not any(c in text for c in ".e"):
            return "int"
        return "float"
    if len(tokens) == 1 and first.type == tokenize.NAME and first.string in ("True", "False"):
        return "bool"
    if all(_is_string_token(t) for t in tokens):
        starts = [t.string for t in tokens if tokenize.tok_name.get(t.type) in ("STRING", "FSTRING_START")]
        prefixes = {text[: len(text) - len(text.lstrip("rRbBuUfF"))].lower() for text in starts}
        return None if any("b" in p for p in prefixes) else "str"
    if first.string in ("[", "{") and first.type == tokenize.OP and _closing(tokens, 0) == len(tokens) - 1:
        if first.string == "[":
            return "list"
        inner = tokens[1:-1]
        if not inner or inner[0].string == "**" or _top_level(inner, 0, ":") is not None:
            return "dict"
        return None  # a set
    return None


def _is_string_token(tok: tokenize.TokenInfo) -> bool:
    return tok.type == tokenize.STRING or tokenize.tok_name.get(tok.type, "").startswith("FSTRING")


def _closing(tokens: list[tokenize.TokenInfo], index: int) -> int | None:
    """Index of the bracket that closes the one at ``index``."""
    depth = 0
    for i in range(index, len(tokens)):
        tok = tokens[i]
        if tok.type == tokenize.OP and tok.string in _OPEN:
            depth += 1
        elif tok.type == tokenize.OP and tok.string in _CLOSE:
            depth -= 1
            if depth == 0:
                return i
    return None
