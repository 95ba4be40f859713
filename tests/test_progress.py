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


TINY_TRAIN = ["--classes", "horse,boat", "--bin-sizes", "4,8", "--step", "6", "--max-descriptors", "4000"]


def _train_stderr(capsys, small_toyvoc, out, *argv):
    from bowlrp import cli

    assert cli.main(["train", "--data", str(small_toyvoc), "--out", str(out), *TINY_TRAIN, *argv]) == 0
    return capsys.readouterr().err.splitlines()


def test_train_reports_every_stage_when_piped(small_toyvoc, tmp_path, capsys, monkeypatch):
    """``bowlrp train`` with stderr piped: update lines from descriptor extraction, PCA, every EM
    iteration (log-likelihood and change), the encoding, the Gram matrix and each class' SVM with
    the C being tried; k-means for a BoW model; none of them with --no-progress."""
    monkeypatch.setenv("BOWLRP_PROGRESS_INTERVAL", "0")  # every update is a line
    lines = _train_stderr(capsys, small_toyvoc, tmp_path / "fv", "--gmm-k", "4")
    for stage in ("sampling descriptors: ", "PCA to 80 dims (", "GMM EM (K=4, ",
                  "encoding training images: ", "SVM Gram matrix (", "SVM per class (C search): "):
        assert any(line.startswith(stage) for line in lines), stage
    em = [line for line in lines if line.startswith("GMM EM (K=4, ")]
    assert len(em) >= 3 and all("log-likelihood -" in line and ", change " in line for line in em)
    assert em[-1].startswith("GMM EM (K=4, ") and ": done " in em[-1]
    svm = [line for line in lines if line.startswith("SVM per class (C search): ")]
    assert any("horse: C=" in line for line in svm) and any("boat: C=" in line for line in svm)
    assert svm[-1].startswith("SVM per class (C search): done 2/2")
    assert not any("\r" in line for line in lines)

    lines = _train_stderr(capsys, small_toyvoc, tmp_path / "vq", "--encoder", "vq", "--vocab-size", "8")
    assert any(line.startswith("k-means (8 words, ") and ": done 1/1" in line for line in lines)

    lines = _train_stderr(capsys, small_toyvoc, tmp_path / "quiet", "--gmm-k", "4", "--no-progress")
    assert not any(line.startswith(("sampling", "PCA", "GMM", "encoding", "SVM")) for line in lines), lines
