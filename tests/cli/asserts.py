"""Assertions shared by the CLI tests."""


def assert_one_line_error(result, code, fragment):
    assert result.exit_code == code, (result.exit_code, result.stderr, result.stdout)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert fragment in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr + result.stdout
