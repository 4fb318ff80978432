"""Text from the network, made safe: for log lines, and as a field's value.

Any player can put control characters (a NUL, an escape sequence, a newline that forges a
log line) or Unicode format characters (U+202E turns the rest of a line around) into a
world path, a name or a JID. L{Logger} escapes every string field of every log event before
it is formatted, so what reaches a terminal or a log file is what was sent, visibly;
L{text_problem} is how a text field refuses them.
"""

from __future__ import annotations

import unicodedata

from google.protobuf.message import Message
from twisted.logger import Logger as _TwistedLogger

#: Unicode categories a text field refuses: control and format characters.
REFUSED = frozenset({"Cc", "Cf"})


def _escaped(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def escape(text: str) -> str:
    """``text`` with every character that does not print (controls, format characters,
    separators other than the space) written as ``\\xNN`` / ``\\uNNNN``."""
    if text.isprintable():  # (nearly always)
        return text
    return "".join(c if c.isprintable() or c == " " else _escaped(c) for c in text)


def text_problem(value: str) -> str | None:
    """Why a text field from the network is refused, or None."""
    if value.isprintable():
        return None
    for c in value:
        if unicodedata.category(c) in REFUSED:
            kind = "control" if unicodedata.category(c) == "Cc" else "format"
            return f"has a {kind} character (U+{ord(c):04X})"
    return None


def message_text_problem(message: Message, prefix: str = "") -> str | None:
    """The first string field of a protobuf message (nested ones too) that L{text_problem}
    refuses, named, with why; or None."""
    for field, value in message.ListFields():
        name = prefix + field.name
        if field.type == field.TYPE_STRING:
            values = value if field.is_repeated else (value,)
            for text in values:
                problem = text_problem(text)
                if problem:
                    return f"{name} {problem}"
        elif field.type == field.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    problem = text_problem(key) or (
                        text_problem(item) if isinstance(item, str) else None)
                    if problem:
                        return f"{name} {problem}"
                continue
            values = value if field.is_repeated else (value,)
            for item in values:
                problem = message_text_problem(item, name + ".")
                if problem:
                    return problem
    return None


class Logger(_TwistedLogger):
    """twisted.logger's Logger, escaping every string field (see L{escape})."""

    def emit(self, level, format=None, **kwargs) -> None:  # noqa: A002 - Twisted's name
        for key, value in kwargs.items():
            if type(value) is str and not value.isprintable():
                kwargs[key] = escape(value)
        super().emit(level, format, **kwargs)
