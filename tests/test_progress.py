"""Progress is a bar at a terminal, periodic lines when piped, nothing when disabled."""
import io

from bowlrp.progress import LineProgress, NoProgress, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_progress_writes_lines(monkeypatch):
    monkeypatch.setenv("BOWLRP_PROGRESS_INTERVAL", "0")
    out = io.StringIO()
    with progress(3, "explain horse", stream=out) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(3):
            bar.update()
        bar.set_postfix_str("log-likelihood -12.5")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("explain horse: 1/3 (33 %) in ")
    assert lines[2].startswith("explain horse: 3/3 (100 %)")
    assert lines[-1].startswith("explain horse: done 3/3") and lines[-1].endswith("log-likelihood -12.5")
    assert "\r" not in out.getvalue()


def test_piped_progress_is_rate_limited(monkeypatch):
    monkeypatch.setenv("BOWLRP_PROGRESS_INTERVAL", "3600")
    out = io.StringIO()
    with progress(1000, "fit", stream=out) as bar:
        for _ in range(1000):
            bar.update()
    # shorter than one interval: nothing at all, not one line per step
    assert out.getvalue() == ""


def test_unknown_total_counts_steps(monkeypatch):
    monkeypatch.setenv("BOWLRP_PROGRESS_INTERVAL", "0")
    out = io.StringIO()
    with progress(None, "gmm", stream=out) as bar:
        bar.update()
        bar.set_postfix_str("change 1e-3")
    assert out.getvalue().splitlines()[0].startswith("gmm: 1 in ")
    assert "%" not in out.getvalue()


def test_terminal_gets_a_bar_and_disabled_gets_nothing(monkeypatch):
    monkeypatch.setenv("BOWLRP_PROGRESS_INTERVAL", "0")
    terminal = Terminal()
    with progress(2, "bar", stream=terminal) as bar:
        assert not isinstance(bar, (LineProgress, NoProgress))
        bar.update(2)
    assert "\r" in terminal.getvalue()
    out = io.StringIO()
    with progress(2, "quiet", enabled=False, stream=out) as bar:
        bar.update(2)
    assert out.getvalue() == ""
