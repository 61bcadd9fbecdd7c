"""Messages off a terminal are plain lines: the text rich would show, without importing rich."""

import pytest
from rich.markup import escape as rich_escape
from rich.text import Text

from focalcli.cli import console as con

CASES = ["wrote a.png", "[bold red]error:[/bold red] x", "scan[a]/depth.png", "x\\[bold]y", "x\\\\[dim]y[/dim]",
         "trail\\", "trail\\\\", "[yellow]note:[/yellow] s: 0.5 [m]", "C:\\dir\\[x]", "a[1]b", "[#ff0000]r[/]",
         "weird [ [a] ]", "\\\\\\[b]q", "[/]"]


@pytest.mark.parametrize("text", CASES)
def test_plain_and_escape_agree_with_rich(text):
    assert con.escape(text) == rich_escape(text)
    assert con.plain(con.escape(text)) == Text.from_markup(con.escape(text)).plain
    try:
        shown = Text.from_markup(text).plain
    except Exception:  # not valid markup for rich (a closing tag with nothing open): nothing to compare
        return
    assert con.plain(text) == shown


def test_paths_with_brackets_are_printed_as_they_are(capsys):
    con.info(f"wrote {con.escape('scan[a]/depth.png')}")
    assert capsys.readouterr().err == "wrote scan[a]/depth.png\n"  # not wrapped, no markup, brackets kept


def test_the_console_is_plain_off_a_terminal(capsys):
    assert not con.console.is_terminal
    con.console.print("[bold red]error:[/bold red] " + "long " * 40, soft_wrap=True)
    assert capsys.readouterr().err == "error: " + "long " * 40 + "\n"
