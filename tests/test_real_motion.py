"""Motion on real photos never trained on (issue 12), with the real ONNX model and models/realset/."""

from __future__ import annotations

import numpy as np
import pytest
from stillflow.models import evaluate_real as ev

PHOTOS = sorted(ev.REALSET.glob("*.jpg"))


def test_the_real_set_is_complete_and_licensed():
    licences = (ev.REALSET / "LICENSES.md").read_text(encoding="utf-8")
    assert len(PHOTOS) >= 20  # the minimum
    for p in PHOTOS:
        assert p.with_name(p.stem + ".hints.json").is_file(), p
        assert f"## {p.name}" in licences, f"{p.name} has no licence entry"


@pytest.fixture(scope="module")
def rows():
    return ev.evaluate(PHOTOS, 384)


def test_guided_motion_follows_the_arrows_speed_and_direction(rows):
    guided = [r for r in rows if not np.isnan(r["speed_ratio"])]
    # every photo: the surf of the CoastCam view came out at 0.85 of its arrows before core.motion.flatten_near
    assert all(abs(r["speed_ratio"] - 1.0) <= 0.1 for r in guided), [(r["photo"], r["speed_ratio"]) for r in guided]
    # issue 12's target is a cosine of at least 0.95 at the arrows: McWay Falls' 12 close arrows at different
    # angles missed it (0.934) until core.motion.honour_arrows gave each arrow its own share (0.988)
    for r in guided:
        assert r["arrow_cos"] >= 0.95, (r["photo"], r["arrow_cos"])


def test_table_has_the_baselines(rows, capsys):
    ev.print_table(rows)
    out = capsys.readouterr().out
    assert "iou_everything" in out and "cos_down" in out and "IoU above 'everything moves'" in out
    for r in rows:
        assert 0.0 <= r["iou"] <= 1.0 and 0.0 <= r["still_seen"] <= r["still_moving"] <= 1.0
        assert r["still_down"] == 1.0 or np.isnan(r["cos"])  # a constant field moves every still pixel


def test_still_seen_counts_only_the_still_pixels_that_have_texture():
    """A sunset (clouds_sunset_beach, CC0) whose hand-drawn region is its clouds and its water: a field that
    moves the whole picture moves every still pixel, but a viewer sees only those with texture slide (the
    shore's rocks), not the clear sky's; a field that moves only the smooth sky is seen nowhere."""
    img, _, mask, direction = ev.load_photo(ev.REALSET / "clouds_sunset_beach.jpg", 384)
    tex = ev.textured(img)
    still = ~mask
    assert 0.05 < (tex & still).sum() / still.sum() < 0.95  # both kinds of still pixels are there
    everything = np.ones(mask.shape + (2,), np.float32)
    s = ev.scores(everything, mask, direction, 1.0, tex)
    assert s["still_moving"] == 1.0
    assert abs(s["still_seen"] - (tex & still).sum() / still.sum()) < 1e-6
    smooth_sky = everything * (still & ~tex)[..., None]
    s = ev.scores(smooth_sky, mask, direction, 1.0, tex)
    assert s["still_moving"] > 0.3 and s["still_seen"] == 0.0


def _row(rows, stem):
    return next(r for r in rows if r["photo"] == stem)


def test_shipped_model_keeps_a_road_still_and_moves_the_surf_toward_the_beach(rows):
    """The shipped model, no hints and no mask, on real photos never trained on: on an aerial photo
    (sea_aerial_surf_road_533678, CC0) the beach, dunes and road stay still and the surf moves toward the
    beach, the way its hand-drawn arrows say (mean cosine 0.62 at 384 px with stage 12; 0.85 with stage 10,
    which moved more of the picture); on a USGS CoastCam view (public domain) the surf moves toward the
    beach (0.97). A regression guard on photos where the model is right, not the issue's targets."""
    r = _row(rows, "sea_aerial_surf_road_533678")
    assert r["still_moving"] <= 0.05, r
    assert r["cos"] >= 0.5 and r["iou"] > r["iou_everything"], r
    c = _row(rows, "sea_coastcam_caco_c1")
    assert c["cos"] >= 0.9 and c["iou"] > c["iou_everything"], c


def test_shipped_model_moves_nothing_in_a_photo_with_nothing_that_flows(rows):
    """still_casa_mila (CC0): a courtyard of stone and windows seen from below; no pixel may move."""
    r = _row(rows, "still_casa_mila")
    assert r["still_moving"] == 0.0 and r["iou"] == 1.0, r
    assert r["still_drift"] <= 0.05, r  # not even a drift: 0.94 of it crept at under 1/60 px/frame before


def test_a_loop_of_a_photo_with_nothing_that_flows_is_the_photo_in_every_frame():
    """The model's faint drift is settled (core.motion.settle): on still_casa_mila (CC0) a loop rendered from
    the shipped model's motion keeps nearly every pixel exactly the photo in every frame (0.02 before)."""
    from stillflow.core.job import LoopSpec
    from stillflow.core.motion import predict_motion
    from stillflow.core.render import render_loop

    img = ev.load_photo(ev.REALSET / "still_casa_mila.jpg", 256)[0]
    field = predict_motion(img, source="model").field
    exact = [float((frame.rgb == img).all(axis=2).mean()) for frame in
             render_loop(img, field, LoopSpec(frames=12), device="cpu")]
    assert min(exact) >= 0.95, exact


def test_a_clear_sky_stays_still_and_a_cloudy_one_drifts_sideways(rows):
    """core.sky, on real photos never trained on, no hints and no mask: the bright, blurred sky behind a rock
    (still_canyon_wren_rock, CC0) stays still (0.47 of it moved down before); the cumulus sky over an island
    (clouds_island_188029, CC0) drifts sideways, the way its arrows say (cosine 0.40 before: it went down);
    the dune's clear sky (smoke_dune_sand) stays still (0.62 moved before)."""
    canyon = _row(rows, "still_canyon_wren_rock")
    assert canyon["still_moving"] <= 0.01, canyon
    island = _row(rows, "clouds_island_188029")
    assert island["cos"] >= 0.8 and island["iou"] > island["iou_everything"], island
    assert _row(rows, "smoke_dune_sand")["still_moving"] <= 0.01


def test_a_clear_sky_is_still_down_to_its_foot_so_the_crests_below_do_not_slide(rows):
    """A clear sky is still from the middle of its blend band across the horizon up, the network's field
    fading in below it: with the field kept at (1 - weight) there, the calm bay's hill crests (lake_calm_bay,
    CC0) slid down with the sky (0.059 of its still pixels moved, 0.018 now) and a coastal camera's strip of
    sky slid into the sea (sea_coastcam_caco_c1, public domain: 0.034, now 0.003)."""
    from stillflow.core.motion import predict_motion
    from stillflow.core.sky import find_sky

    assert _row(rows, "lake_calm_bay_574021")["still_moving"] <= 0.03
    assert _row(rows, "sea_coastcam_caco_c1")["still_moving"] <= 0.01
    img = ev.load_photo(ev.REALSET / "lake_calm_bay_574021.jpg", 384)[0]
    raw = predict_motion(img, source="model", sky=False).field
    sky = find_sky(img, raw)
    assert sky is not None and not sky.cloudy
    field = predict_motion(img, source="model").field
    foot = sky.weight >= 0.5
    band = foot & (sky.weight < 1.0)  # the upper half of the blend band
    assert band.sum() > 100 and np.abs(field[foot]).max() == 0.0
    assert np.hypot(raw[band, 0], raw[band, 1]).mean() > 0.2  # the network moved it


def test_the_sky_cue_finds_skies_only_where_there_are_and_can_be_turned_off():
    """No sky on an aerial canal (river_welton_canal: the water above its first edge is darker than the
    banks) nor on sand at the top of an aerial beach (sea_aerial_surf_35626: not blue); a sky on the canyon
    photo, clear, and on the island photo, cloudy. With ``sky=False`` the network's own field comes back, and
    a note tells the user what the cue did."""
    from stillflow.core.motion import predict_motion
    from stillflow.core.sky import find_sky

    def photo(stem):
        return ev.load_photo(ev.REALSET / f"{stem}.jpg", 256)[0]

    assert find_sky(photo("river_welton_canal")) is None
    assert find_sky(photo("sea_aerial_surf_35626")) is None
    canyon, island = find_sky(photo("still_canyon_wren_rock")), find_sky(photo("clouds_island_188029"))
    assert canyon is not None and not canyon.cloudy and 0.2 < canyon.fraction < 0.8
    assert island is not None and island.cloudy and 0.2 < island.fraction < 0.8

    img = photo("still_canyon_wren_rock")
    on, off = predict_motion(img, source="model"), predict_motion(img, source="model", sky=False)
    moving = lambda f: float((np.hypot(f[..., 0], f[..., 1]) > 0.1).mean())  # noqa: E731
    assert moving(on.field) <= 0.01 < 0.1 <= moving(off.field), (moving(on.field), moving(off.field))
    assert any("clear sky" in n for n in on.notes) and not any("sky" in n for n in off.notes)
    sky = predict_motion(photo("clouds_island_188029"), source="model").field[find_sky(photo(
        "clouds_island_188029")).inner > 0.99]
    assert sky[:, 0].mean() > 0.1 and np.abs(sky[:, 1]).mean() < 0.02, sky.mean(axis=0)


def test_clouds_with_sharp_edges_drift_sideways_not_down(monkeypatch):
    """clouds_colosseum (CC0): sharp-edged clouds beside a building. The photo's first edges stop inside the
    sky, at the clouds' own edges, so core.sky finds no sky from the photo alone and the network moved the
    clouds down; what the network moves down from the top edge, to the building, passes the sky's tests
    (bright, brighter than the rest, blue), so the clouds drift sideways. With that fallback off they sink."""
    from stillflow.core import sky
    from stillflow.core.motion import predict_motion

    img, _, mask, _ = ev.load_photo(ev.REALSET / "clouds_colosseum.jpg", 384)
    assert sky.find_sky(img) is None
    drift = predict_motion(img, source="model").field[mask].mean(axis=0)
    monkeypatch.setattr(sky, "moving_top", lambda field, shape: None)
    sink = predict_motion(img, source="model").field[mask].mean(axis=0)
    assert drift[0] > 0.15 and drift[0] > 3 * abs(drift[1]), drift  # right (the convention), not down
    assert sink[1] > 0.15 and sink[1] > 3 * abs(sink[0]), sink


def test_a_sky_above_a_sea_horizon_drifts_and_what_stands_on_it_stays_still(monkeypatch):
    """clouds_sunset_beach and sea_tropical_shallows_clouds_417083 (CC0): a sunset over the sea, too dark and
    orange for the sky's brightness tests, and a white beach brighter than its sky, with trees standing on
    the horizon. Neither the first edges nor the network's moving top give a sky; the sea horizon does
    (core.sky.line_sky), so the clouds drift sideways (the network moved them down) and the trees on the
    horizon are left out of the sky. With that fallback off the clouds sink."""
    from stillflow.core import sky
    from stillflow.core.motion import predict_motion

    for name in ("clouds_sunset_beach", "sea_tropical_shallows_clouds_417083"):
        img, hints, mask, _ = ev.load_photo(ev.REALSET / f"{name}.jpg", 384)
        top = mask & (np.arange(mask.shape[0])[:, None] < 0.3 * mask.shape[0])  # the clouds, not the sea
        raw = predict_motion(img, source="model", sky=False).field
        found = sky.find_sky(img, raw)
        assert found is not None and found.cloudy, name
        drift = predict_motion(img, source="model").field[top].mean(axis=0)
        with monkeypatch.context() as m:
            m.setattr(sky, "line_sky", lambda lum, line=None: None)
            sink = predict_motion(img, source="model").field[top].mean(axis=0)
        assert drift[0] > 0.1 and drift[0] > 3 * abs(drift[1]), (name, drift)
        assert sink[1] > 0.1 and sink[1] > 3 * abs(sink[0]), (name, sink)
    # the trees on the tropical beach's horizon (left, just above it) are not sky
    h, w = img.shape[:2]
    trees = (slice(int(0.22 * h), int(0.30 * h)), slice(int(0.01 * w), int(0.12 * w)))
    assert found.weight[trees].mean() < 0.2, found.weight[trees].mean()
    assert found.weight[int(0.1 * h), int(0.8 * w)] > 0.9  # the sky over the sea is

def test_clouds_behind_a_skyline_drift_and_a_thin_strip_of_sky_stays_still():
    """lake_singapore_bay (CC0): the first edges stop at the first cloud (4 % of the picture, too thin to
    judge) and the network moves only part of the sky above the sea horizon, down; the next candidate, the
    sky above the horizon, brighter than the water and skyline below it, is taken and its clouds drift
    sideways. sea_coastcam_caco_c1 (USGS, public domain): the strip of sky above the sea horizon is too thin
    to tell clouds from a clear sky, so it is left still (the network slid it down into the sea)."""
    from stillflow.core.motion import predict_motion

    img, _, mask, _ = ev.load_photo(ev.REALSET / "lake_singapore_bay.jpg", 512)
    top = mask & (np.arange(mask.shape[0])[:, None] < 0.12 * mask.shape[0])  # clouds above the towers
    raw = predict_motion(img, source="model", sky=False).field[top].mean(axis=0)
    drift = predict_motion(img, source="model").field[top].mean(axis=0)
    assert raw[1] > 0.1 and raw[1] > 3 * abs(raw[0]), raw  # the network sinks them
    assert drift[0] > 0.1 and drift[0] > 3 * abs(drift[1]), drift

    img, _, mask, _ = ev.load_photo(ev.REALSET / "sea_coastcam_caco_c1.jpg", 512)
    h = img.shape[0]
    strip = (slice(0, int(0.04 * h)), slice(None))  # above the horizon (4.5-7 % of the height)
    assert not mask[strip].any()
    raw = np.hypot(*predict_motion(img, source="model", sky=False).field[strip].transpose(2, 0, 1))
    out = np.hypot(*predict_motion(img, source="model").field[strip].transpose(2, 0, 1))
    assert (raw > 0.2).mean() > 0.9, (raw > 0.2).mean()
    assert (out > 0.2).mean() < 0.02 and out.max() < 0.25, ((out > 0.2).mean(), out.max())


def test_the_far_sea_slows_toward_its_horizon_so_the_sky_is_not_dragged_into_it():
    """sea_tropical_shallows_clouds_417083 (CC0): the network moved the sea as fast on the horizon as in
    front of the camera, so the sea tore away from the sky's foot and the clouds were dragged down into it
    (seen in frames 15-45 of a 640 px loop). core.sky.far_sea: 0 on the horizon, growing with the distance
    below it; the near sea keeps the network's speed. A photo with no sea horizon (an aerial beach) is left
    as it was."""
    from stillflow.core import sky
    from stillflow.core.field import downsize
    from stillflow.core.motion import predict_motion

    img, _, _, _ = ev.load_photo(ev.REALSET / "sea_tropical_shallows_clouds_417083.jpg", 512)
    h = img.shape[0]
    line = sky._horizon(downsize(img, sky.WORK).mean(axis=2)) * h / downsize(img, sky.WORK).shape[0]
    assert 0.25 * h < line < 0.4 * h, line  # the sea horizon, under the clouds
    speed = lambda f: np.hypot(f[..., 0], f[..., 1])  # noqa: E731
    raw = speed(predict_motion(img, source="model", sky=False).field)
    out = speed(predict_motion(img, source="model").field)
    band = slice(int(line) - 1, int(line) + 2)  # the horizon's rows
    near = slice(int(line + 0.3 * (h - line)), h)  # the sea in front
    right = slice(int(0.6 * img.shape[1]), None)  # the open sea (the sandbar is at the left)
    assert raw[band, right].mean() > 0.2, raw[band, right].mean()
    assert out[band, right].max() < 0.1 * raw[band, right].mean(), out[band, right].max()
    assert np.allclose(out[near, right], raw[near, right], atol=1e-4)

    img, _, _, _ = ev.load_photo(ev.REALSET / "sea_aerial_surf_35626.jpg", 512)
    field = predict_motion(img, source="model", sky=False).field
    assert sky.far_sea(field, img)[1] is None
    assert np.array_equal(sky.far_sea(field, img)[0], field)


def test_what_stands_on_a_sea_horizon_stays_still_and_a_waterfall_is_not_taken(monkeypatch):
    """lake_singapore_bay (CC0): the network slid the skyline down with the sky behind it; what stands on the
    sea horizon, darker than its sky, is held still (core.sky.on_horizon): still pixels moving 0.070 ->
    0.004 when measured. waterfall_mcway_falls_105518 (CC0): the beach line is taken for a horizon and its
    cliffs and palms are held still, but not the bright fall in front of them (bright detail that stands
    up is never held: the points along its arrows lie outside what is held, but for one at its top)."""
    from stillflow.core import sky
    from stillflow.core.field import downsize
    from stillflow.core.motion import predict_motion

    img, _, mask, _ = ev.load_photo(ev.REALSET / "lake_singapore_bay.jpg", 512)
    scale = 960.0 / max(img.shape[:2])
    moving = {}
    for held in (True, False):
        with monkeypatch.context() as m:
            if not held:
                m.setattr(sky, "on_horizon", lambda lum: None)
            field = predict_motion(img, source="model").field
        moving[held] = float((np.hypot(field[..., 0], field[..., 1])[~mask] * scale > ev.STILL).mean())
    assert moving[True] < 0.01 and moving[False] > 0.04, moving

    img, hints, _, _ = ev.load_photo(ev.REALSET / "waterfall_mcway_falls_105518.jpg", 512)
    objects = sky.on_horizon(downsize(img, sky.WORK).mean(axis=2))
    assert objects is not None and objects.mean() > 0.2  # cliffs, palms, rocks
    s = objects.shape[1] / img.shape[1]
    falls = [a for a in hints.arrows if a.end[1] - a.start[1] > 2 * abs(a.end[0] - a.start[0])]  # the fall's
    points = [(a.start[0] + t * (a.end[0] - a.start[0]), a.start[1] + t * (a.end[1] - a.start[1]))
              for a in falls for t in (0.1, 0.25, 0.5, 0.75, 0.9)]
    held = [bool(objects[int(y * s), int(x * s)]) for x, y in points]
    assert len(points) >= 15 and sum(held) <= 0.1 * len(points), held  # 1 of 20 when measured


def test_detail_that_stands_up_is_not_taken_for_clouds(monkeypatch):
    """Clouds lie flat; a waterfall falling from the top edge has standing streaks and must never be turned
    sideways. The island photo's sky band replaced by standing streaks made of its own sea's ripples (one
    row of them, brightened, repeated down the band) passes every other test of a sky, so it is refused for
    its streaks alone (with ``STANDING`` out of the way it is taken for a cloudy sky)."""
    from stillflow.core import sky

    img = ev.load_photo(ev.REALSET / "clouds_island_188029.jpg", 512)[0]
    h = img.shape[0]
    band = slice(0, int(0.35 * h))
    streaks = img.copy()
    streaks[band] = np.clip(0.25 + img[int(0.8 * h)], 0.0, 1.0)[None]
    assert sky.find_sky(img).cloudy
    assert sky.find_sky(streaks) is None
    monkeypatch.setattr(sky, "STANDING", 1e9)
    assert sky.find_sky(streaks).cloudy


def test_a_mirror_lake_drifts_and_the_mountains_it_mirrors_stay_still():
    """lake_sherburne (CC0): snowy mountains mirrored in a lake. The network alone slid the mountains down
    (0.43 of the still pixels) and left the lake still; core.reflection finds the water line (three quarters
    down), keeps everything above it still below the sky and drifts the lake sideways, the way the photo's
    hand-drawn arrows go. No other photo of the set shows a mirror, and none is taken for one (the canal's
    banks and the street's steam are the same upside down, which the unflipped comparison rules out). With
    the cues off the network's own field comes back."""
    from stillflow.core.motion import predict_motion
    from stillflow.core.reflection import find_reflection

    img, _, mask, direction = ev.load_photo(ev.REALSET / "lake_sherburne.jpg", 384)
    found = find_reflection(img)
    assert found is not None and 0.7 < found.line < 0.8, found and found.line
    on, off = predict_motion(img, source="model"), predict_motion(img, source="model", sky=False)
    scale = 960.0 / max(img.shape[:2])
    with_cue, without = ev.scores(on.field, mask, direction, scale), ev.scores(off.field, mask, direction, scale)
    assert with_cue["still_moving"] <= 0.05 < 0.2 <= without["still_moving"], (with_cue, without)
    assert with_cue["cos"] >= 0.8 and with_cue["iou"] >= 0.8 > without["iou"], (with_cue, without)
    assert any("reflection" in n for n in on.notes) and not any("reflection" in n for n in off.notes)
    for p in PHOTOS:
        if p.stem != "lake_sherburne":
            assert find_reflection(ev.load_photo(p, 384)[0]) is None, p.stem


def test_a_mirror_made_from_a_photo_is_found_at_its_line():
    """The other side of the threshold: a photo with nothing mirrored in it (the canyon, CC0) whose lower
    part is replaced by its upper part flipped, darkened, rippled sideways row by row and blurred, the way a
    lake mirrors a shore, is found as a reflection with its line where it was made."""
    from stillflow.core.field import box_blur
    from stillflow.core.reflection import find_reflection

    img = ev.load_photo(ev.REALSET / "still_canyon_wren_rock.jpg", 384)[0]
    assert find_reflection(img) is None
    h = img.shape[0]
    line = int(0.6 * h)
    src = img[2 * line - h:line][::-1] * 0.7 + 0.05
    rows = np.arange(h - line)
    rippled = np.stack([np.roll(src[i], int(3 * np.sin(0.7 * i)), axis=0) for i in rows])
    lake = img.copy()
    lake[line:] = np.stack([box_blur(rippled[..., c], 1) for c in range(3)], axis=-1)
    found = find_reflection(lake)
    assert found is not None and abs(found.line - 0.6) < 0.03, found and found.line
    assert found.water[line + 5:].mean() > 0.8 and found.water[:line - 5].max() < 0.1


def _along_arrows(field, hints):
    """Speed / drawn speed at a quarter, half and three quarters of each arrow."""
    return np.array([ev._speed_ratio(field, a, t)[0] for a in hints.arrows for t in (0.25, 0.5, 0.75)])


def test_arrows_set_the_speed_all_along_them_not_only_on_average(monkeypatch):
    """The surf of a USGS CoastCam view (public domain), five arrows, the shipped model: the network's speed
    ripples with the wave crests, so one correction per arrow left 0.74-1.17 of the drawn speed along them.
    core.motion.flatten_near evens the speed out near the arrows: every point within 10%."""
    from stillflow.core import motion

    img, hints, _, _ = ev.load_photo(ev.REALSET / "sea_coastcam_caco_c2.jpg", 512)
    after = _along_arrows(motion.predict_motion(img, hints=hints, source="model").field, hints)
    assert np.all(np.abs(after - 1.0) <= 0.1), after.round(3)
    monkeypatch.setattr(motion, "flatten_near", lambda field, arrows, sigma: field)
    before = _along_arrows(motion.predict_motion(img, hints=hints, source="model").field, hints)
    assert np.abs(before - 1.0).max() > 0.2, before.round(3)  # what the test guards against
