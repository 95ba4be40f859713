"""The whole faces study at small size (the CI run of issue 15): tables, maps, regions, the smile bias's
direction in the relevance, and resumption."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from bowlrp.data.synth.facedraw import REGION_LABELS
from bowlrp.errors import BowlrpError
from bowlrp.faces.regions import FACE_REGIONS, bootstrap_mean, region_measures, smile_bias
from bowlrp.faces.study import ALIGNS, INITS, run_faces_study


def test_region_measures_by_hand():
    labels = np.zeros((4, 4), np.uint8)
    labels[0, :2] = REGION_LABELS["mouth"]  # 2 of 16 pixels
    relevance = np.full((4, 4), -1.0)
    relevance[0, 0] = 3.0
    relevance[3, 3] = 1.0  # positive total 4, 3 of it on the mouth
    m = region_measures(relevance, labels, REGION_LABELS)
    assert m["mouth"]["mass"] == pytest.approx(0.75) and m["mouth"]["density"] == pytest.approx(0.75 / (2 / 16))
    assert m["background"]["mass"] == pytest.approx(0.25) and np.isnan(m["eyes"]["mass"])
    assert set(m) == set(FACE_REGIONS)


def test_bootstrap_interval_covers_the_mean_and_shrinks():
    rng = np.random.default_rng(0)
    small, large = bootstrap_mean(rng.normal(2, 1, 20)), bootstrap_mean(rng.normal(2, 1, 2000))
    assert small["lo"] < small["mean"] < small["hi"] and large["lo"] < 2 < large["hi"]
    assert large["hi"] - large["lo"] < (small["hi"] - small["lo"]) / 4
    d = smile_bias(np.array([[5.0, 5, 1, 1], [4, 6, 1, 2]]), [0, 1])
    assert d["difference"]["mean"] == pytest.approx((4 + 3.5) / 2) and d["inside"]["mean"] == pytest.approx(5.0)


@pytest.mark.slow
def test_small_study_end_to_end(small_toyfaces, small_faces_study):
    data, out = small_toyfaces, small_faces_study  # run once by the session fixture, from nothing
    records = {p.stem: json.loads(p.read_text()) for p in (out / "steps").glob("*.json")}
    assert "regions" in records and all(r["status"] == "done" for r in records.values())
    acc = json.loads((out / "evaluate" / "accuracy.json").read_text())
    assert {(r["align"], r["init"]) for r in acc["table"]} == {(a, i) for a in ALIGNS for i in INITS}
    for row in acc["table"]:
        assert 0 <= row["accuracy"] <= row["one_off_accuracy"] <= 1 and row["n_images"] >= 40
    assert len(acc["swapping"]) == 4 and all(s["tested"] != s["trained"] for s in acc["swapping"])
    # the planted smile bias shows in the relevance: on smiling faces the mouth is denser in relevance for
    # the 15-43 outputs than for the others (the bootstrap interval of the difference above zero)
    smile = json.loads((out / "regions" / "regions.json").read_text())["models"]["age"]["smile"]
    diff = smile["smiling"]["difference"]
    assert diff["lo"] > 0, smile
    assert smile["smiling"]["inside"]["mean"] > smile["smiling"]["outside"]["mean"]
    maps = json.loads((out / "maps" / "maps.json").read_text())
    assert len(maps["faces"]) == 4 and all(np.isfinite(f["relevance_sum"]).all() for f in maps["faces"])
    for png in ("evaluate/accuracy.png", "maps/maps.png", "regions/regions.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # resumable: a second run finds every step up to date
    again = run_faces_study(data, out, size="small", stream=io.StringIO())
    assert not again.ran and len(again.skipped) == len(records)
    with pytest.raises(BowlrpError, match="other settings"):
        run_faces_study(data, out, size="small", seed=1, stream=io.StringIO())
