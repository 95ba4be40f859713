"""The whole faces study at small size (the CI run of issue 15): tables, maps, regions, the smile bias's
direction in the relevance, and resumption."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from bowlrp.data.synth.facedraw import REGION_LABELS
from bowlrp.data.adience import AGE_GROUPS, open_adience
from bowlrp.errors import BowlrpError, SkipLog
from bowlrp.faces.models import face_scores
from bowlrp.faces.regions import FACE_REGIONS, bootstrap_mean, fisher_every_class, region_measures, smile_bias
from bowlrp.faces.study import ALIGNS, FISHER_KEY, FISHER_MODEL, INITS, run_faces_study


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


def test_fisher_maps_of_every_class_conserve_with_the_bias(tiny_fv_model, small_toyvoc):
    """The FV maps of every class: each map's sum plus what its SVM's bias keeps is the class score, and that
    score is the model's own forward score of the image (BowModel.score_images, not the explanation's)."""
    from bowlrp.data import open_dataset
    from bowlrp.data.images import load_image
    from bowlrp.pipeline import load_bow_model

    model = load_bow_model(tiny_fv_model)
    image = load_image(open_dataset(small_toyvoc).split("test")[0].path)
    maps, scores, bias = fisher_every_class(model, image, ["boat", "horse"])  # not the model's class order
    assert maps.shape == (2, *image.shape[:2]) and np.abs(maps).sum(axis=(1, 2)).min() > 0
    np.testing.assert_allclose(scores, model.score_images([image])[0][[1, 0]], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(maps.sum(axis=(1, 2), dtype=np.float64) + bias, scores, rtol=1e-5, atol=1e-6)
    assert np.all(bias != 0)  # the bias really is part of the books: without it they would not close


@pytest.mark.slow
def test_small_study_end_to_end(small_toyfaces, small_faces_study):
    data, out = small_toyfaces, small_faces_study  # run once by the session fixture, from nothing
    records = {p.stem: json.loads(p.read_text()) for p in (out / "steps").glob("*.json")}
    assert "regions" in records and all(r["status"] == "done" for r in records.values())
    acc = json.loads((out / "evaluate" / "accuracy.json").read_text())
    networks = [r for r in acc["table"] if r["family"] == "dnn"]
    assert {(r["align"], r["init"]) for r in networks} == {(a, i) for a in ALIGNS for i in INITS}
    for row in acc["table"]:
        assert 0 <= row["accuracy"] <= row["one_off_accuracy"] <= 1 and row["n_images"] >= 40
    fisher = [r for r in acc["table"] if r["family"] == "fisher"]  # the FV model: one row, in-plane age
    assert [(r["task"], r["align"], r["init"]) for r in fisher] == [("age", "inplane", None)]
    assert records[FISHER_MODEL]["status"] == "done" and (out / "models" / FISHER_MODEL / "faces.json").is_file()
    assert np.sum(fisher[0]["confusion"]) == fisher[0]["n_images"]
    assert len(acc["swapping"]) == 4 and all(s["tested"] != s["trained"] for s in acc["swapping"])
    # the planted smile bias shows in the relevance: on smiling faces the mouth is denser in relevance for
    # the 15-43 outputs than for the others (the bootstrap interval of the difference above zero)
    smile = json.loads((out / "regions" / "regions.json").read_text())["models"]["age"]["smile"]
    diff = smile["smiling"]["difference"]
    assert diff["lo"] > 0, smile
    assert smile["smiling"]["inside"]["mean"] > smile["smiling"]["outside"]["mean"]
    maps = json.loads((out / "maps" / "maps.json").read_text())
    assert len(maps["faces"]) == 4 and all(np.isfinite(f["relevance_sum"]).all() for f in maps["faces"])
    # the FV model's maps of every class for the same faces; they conserve: map sum + SVM bias = score, the
    # score the FV model gives the face when it is evaluated
    fv = maps["fisher"]
    assert fv["model"] == FISHER_MODEL and [f["face"] for f in fv["faces"]] == [f["face"] for f in maps["faces"]]
    paths, _, faces = open_adience(data).samples("age", "inplane", (4,), SkipLog())
    by_key = {f.key: p for p, f in zip(paths, faces)}
    evaluated, _ = face_scores(out / "models" / FISHER_MODEL, [by_key[f["face"]] for f in fv["faces"]], SkipLog())
    for face, own in zip(fv["faces"], evaluated):
        assert len(face["scores"]) == len(face["relevance_sum"]) == len(face["bias_relevance"]) == len(AGE_GROUPS)
        np.testing.assert_allclose(face["scores"], own, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(np.add(face["relevance_sum"], face["bias_relevance"]), face["scores"],
                                   rtol=1e-5, atol=1e-6)
    # its region table and smile test beside the network's
    regions = json.loads((out / "regions" / "regions.json").read_text())["models"]
    assert set(regions) == {"age", FISHER_KEY} and regions[FISHER_KEY]["family"] == "fisher"
    fv_regions = regions[FISHER_KEY]
    assert fv_regions["model"] == FISHER_MODEL and fv_regions["n_faces"] == regions["age"]["n_faces"]
    densities = [c["density"]["mean"] for g in fv_regions["by_group"].values() for c in g.values() if c["density"]["n"]]
    assert densities and np.isfinite(densities).all() and min(densities) >= 0
    assert np.isfinite([fv_regions["smile"]["smiling"][k]["mean"] for k in ("inside", "outside", "difference")]).all()
    for png in ("evaluate/accuracy.png", "maps/maps.png", "maps/maps-fisher.png", "regions/regions.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # resumable: a second run finds every step up to date
    again = run_faces_study(data, out, size="small", stream=io.StringIO())
    assert not again.ran and len(again.skipped) == len(records)
    with pytest.raises(BowlrpError, match="other settings"):
        run_faces_study(data, out, size="small", seed=1, stream=io.StringIO())
