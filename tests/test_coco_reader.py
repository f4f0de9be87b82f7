"""The COCO reader: exact rows from a hand-written instances JSON; whole-file errors that name the
file, and bad records skipped and listed with a reason that names the file and record."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline.boxes import COLUMNS
from pipeline.records import BadRecordsError, BadRecordSettings, RecordRejects
from pipeline.sources.coco import (
    CocoFormatError,
    load_instances,
    read_boxes,
    wanted_categories,
)
from tests.fixtures import (
    ANNOTATIONS,
    CATEGORIES,
    IMAGES,
    as_loaded,
    instances,
    write_instances,
)


def read(path: Path, image_dir: Path, categories=("giraffe",), **kwargs):
    return read_boxes(
        path, image_dir=image_dir, categories=categories, source="coco", split="val2017", **kwargs
    )


@pytest.fixture
def giraffes(tmp_path):
    path = write_instances(tmp_path / "instances_val2017.json")
    return read(path, tmp_path / "img", image_url="http://h/{split}/{file_name}")


def test_rows_have_the_table_columns_sorted_by_box_id(giraffes):
    assert list(giraffes.columns) == COLUMNS
    assert giraffes["box_id"].tolist() == ["coco:1:10", "coco:1:14", "coco:2:11", "coco:3:13"]
    assert giraffes.index.tolist() == [0, 1, 2, 3]
    assert set(giraffes["source"]) == {"coco"} and set(giraffes["split"]) == {"val2017"}
    assert giraffes["image_id"].tolist() == ["1", "1", "2", "3"]
    assert set(giraffes["category"]) == {"giraffe"}


def test_corners_are_x_plus_w_and_y_plus_h_clipped_to_the_image(giraffes):
    corners = giraffes.set_index("box_id")[["x0", "y0", "x1", "y1"]]
    assert corners.loc["coco:1:10"].tolist() == [10.5, 20.0, 110.5, 70.25]  # inside: exact
    assert corners.loc["coco:2:11"].tolist() == [250.0, 0.0, 300.0, 55.0]  # past right and top
    assert corners.loc["coco:3:13"].tolist() == [0.0, 40.0, 30.0, 100.0]  # past left and bottom
    assert corners.loc["coco:1:14"].tolist() == [600.0, 400.0, 640.0, 480.0]  # to the corner
    assert str(giraffes["x0"].dtype) == "float64"


def test_sizes_flags_paths_and_urls(giraffes, tmp_path):
    rows = giraffes.set_index("box_id")
    assert rows["image_width"].tolist() == [640, 640, 300, 100]
    assert rows["image_height"].tolist() == [480, 480, 200, 100]
    assert rows["is_crowd"].tolist() == [False, False, True, False]  # no iscrowd key: False
    assert rows.loc["coco:2:11", "image_path"] == str(tmp_path / "img" / "sub" / "b.jpg")
    assert rows.loc["coco:1:10", "image_path"] == str(tmp_path / "img" / "a.jpg")
    assert rows.loc["coco:2:11", "image_url"] == "http://h/val2017/sub/b.jpg"
    for flag in ("is_group", "is_truncated", "is_occluded", "is_depiction"):
        assert rows[flag].isna().all()  # COCO has no such flags
    assert rows["rotation"].isna().all()


def test_no_url_template_gives_empty_urls(tmp_path):
    rows = read(write_instances(tmp_path / "i.json"), tmp_path)
    assert rows["image_url"].tolist() == ["", "", "", ""]


def test_category_names_match_case_insensitively_in_one_canonical_form(tmp_path):
    path = write_instances(tmp_path / "i.json")  # the file spells it "Zebra"
    rows = read(path, tmp_path, categories=("GIRAFFE", "zebra"))
    assert rows.set_index("box_id")["category"].to_dict() == {
        "coco:1:10": "giraffe",
        "coco:1:14": "giraffe",
        "coco:2:11": "giraffe",
        "coco:2:12": "zebra",
        "coco:3:13": "giraffe",
    }
    assert read(path, tmp_path, categories=("Zebra",))["box_id"].tolist() == ["coco:2:12"]


def test_a_category_without_boxes_gives_an_empty_table(tmp_path):
    rows = read(write_instances(tmp_path / "i.json"), tmp_path, categories=("person",))
    assert rows.empty and list(rows.columns) == COLUMNS


def test_source_and_string_ids_make_the_box_id(tmp_path):
    images = [{"id": "img-7", "file_name": "x/y.png", "width": 50, "height": 40}]
    anns = [{"id": 99, "image_id": "img-7", "category_id": 25, "bbox": [1, 2, 3, 4]}]
    path = write_instances(tmp_path / "i.json", images=images, annotations=anns)
    rows = read_boxes(
        path, image_dir=tmp_path / "d", categories=("giraffe",), source="mysrc", split="train"
    )
    assert rows["box_id"].tolist() == ["mysrc:img-7:99"]
    assert rows.loc[0, "image_id"] == "img-7" and rows.loc[0, "source"] == "mysrc"
    assert rows.loc[0, "image_path"] == str(tmp_path / "d" / "x" / "y.png")
    assert [rows.loc[0, c] for c in ("x0", "y0", "x1", "y1")] == [1.0, 2.0, 4.0, 6.0]


def test_backslashes_in_file_names_are_folders(tmp_path):
    images = [{"id": 1, "file_name": "sub\\b.jpg", "width": 50, "height": 40}]
    anns = [{"id": 1, "image_id": 1, "category_id": 25, "bbox": [1, 2, 3, 4]}]
    path = write_instances(tmp_path / "i.json", images=images, annotations=anns)
    assert read(path, tmp_path)["image_path"].tolist() == [str(tmp_path / "sub" / "b.jpg")]


def test_wanted_categories_map_ids_to_the_canonical_name(tmp_path):
    path = write_instances(tmp_path / "i.json")
    wanted = wanted_categories(load_instances(path), ("ZEBRA ", "Giraffe", "PERSON"), path)
    assert wanted == {24: "zebra", 25: "giraffe", 1: "person"}


def test_load_instances_returns_the_parsed_file_with_the_box_fields(tmp_path):
    data = instances()
    data["annotations"] = [
        {**a, "segmentation": [[1, 2, 3]], "area": 9.5} for a in data["annotations"]
    ]
    path = write_instances(tmp_path / "i.json", data=data)
    loaded = load_instances(path)
    assert loaded == as_loaded(data)
    assert "segmentation" not in loaded["annotations"][0]


# --- errors: each names the file and, where there is one, the record --------------------------


def test_invalid_json_names_the_file(tmp_path):
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(CocoFormatError, match=r"broken\.json: not valid JSON"):
        read(tmp_path / "broken.json", tmp_path)


def test_a_top_level_list_is_refused(tmp_path):
    path = write_instances(tmp_path / "list.json", data=[1, 2])
    with pytest.raises(CocoFormatError, match=r"list\.json: top level: must be an object"):
        read(path, tmp_path)


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_a_missing_list_is_named(tmp_path, key):
    data = instances()
    del data[key]
    path = write_instances(tmp_path / "partial.json", data=data)
    with pytest.raises(CocoFormatError, match=rf"partial\.json: {key}: missing or not a list"):
        read(path, tmp_path)
    data[key] = {"not": "a list"}
    write_instances(path, data=data)
    with pytest.raises(CocoFormatError, match=rf"partial\.json: {key}: missing or not a list"):
        read(path, tmp_path)


def with_annotation(index: int, **changes) -> dict:
    anns = copy.deepcopy(ANNOTATIONS)
    anns[index].update(changes)
    return instances(annotations=anns)


def with_image(index: int, **changes) -> dict:
    images = copy.deepcopy(IMAGES)
    images[index].update(changes)
    return instances(images=images)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_annotation(4, id=11), r"annotations\[4\] \(id=11\): duplicate annotation id"),
        (with_image(2, id=1), r"images\[2\] \(id=1\): duplicate image id"),
        (instances(categories=[*CATEGORIES, {"id": 3}]), r"categories\[3\]: needs id and name"),
    ],
)
def test_whole_file_defects_stop_with_the_file_named(tmp_path, data, message):
    path = write_instances(tmp_path / "bad_instances.json", data=data)
    with pytest.raises(CocoFormatError, match=message) as err:
        read(path, tmp_path)
    assert str(err.value).startswith(f"{path}: ")


LENIENT = BadRecordSettings(max_fraction=1.0)


def read_skipping(path: Path, image_dir: Path, categories=("giraffe",)):
    rejects = RecordRejects("coco")
    rows = read(path, image_dir, categories, rejects=rejects, bad_records=LENIENT)
    return rows, rejects.frame()


# (data, box id skipped, reason, detail): each bad record costs only its own boxes
BAD_RECORDS = [
    (
        with_annotation(1, image_id=99),
        "coco:99:11",
        "unknown_image",
        r"annotations\[1\] \(id=11\): unknown image_id 99",
    ),
    (
        with_annotation(0, bbox=[1, 2, 3]),
        "coco:1:10",
        "bad_bbox",
        r"annotations\[0\] \(id=10\): bbox must be 4 finite",
    ),
    (
        with_annotation(0, bbox=[0, 0, float("nan"), 1]),
        "coco:1:10",
        "bad_bbox",
        r"annotations\[0\] \(id=10\): bbox",
    ),
    (
        with_annotation(0, bbox=[0, 0, float("inf"), 1]),
        "coco:1:10",
        "bad_bbox",
        r"annotations\[0\] \(id=10\): bbox",
    ),
    (
        with_annotation(3, bbox=[0, "5", 1, 1]),
        "coco:3:13",
        "bad_bbox",
        r"annotations\[3\] \(id=13\): bbox.*'5'",
    ),
    (
        with_annotation(3, bbox=[0, True, 1, 1]),
        "coco:3:13",
        "bad_bbox",
        r"annotations\[3\] \(id=13\): bbox",
    ),
    (
        with_annotation(0, bbox=None),
        "coco:1:10",
        "bad_bbox",
        r"annotations\[0\] \(id=10\): bbox.*None",
    ),
    (
        with_annotation(0, bbox=[5, 5, 0, 10]),
        "coco:1:10",
        "empty_box",
        r"annotations\[0\] \(id=10\): bbox .* no area",
    ),
    (with_annotation(0, bbox=[5, 5, 10, -3]), "coco:1:10", "empty_box", r"annotations\[0\]"),
    (
        with_annotation(0, bbox=[700, 5, 10, 10]),
        "coco:1:10",
        "box_outside_image",
        r"annotations\[0\] \(id=10\): .*outside the 640x480 image",
    ),
    (
        with_annotation(0, bbox=[-50, 5, 50, 10]),
        "coco:1:10",
        "box_outside_image",
        r"annotations\[0\]",
    ),
    (
        with_annotation(1, category_id=7),
        "coco:2:11",
        "unknown_category",
        r"annotations\[1\] \(id=11\): unknown category_id 7",
    ),
    (
        instances(annotations=[*ANNOTATIONS, 5]),
        "coco:annotations[5]",
        "bad_record",
        r"annotations\[5\] \(id=\?\): not an object",
    ),
    (
        with_annotation(0, id=None),
        "coco:annotations[0]",
        "bad_record",
        r"annotations\[0\] \(id=None\)",
    ),
    (
        with_image(1, width=0),
        "coco:2:11",
        "bad_image_record",
        r"images\[1\] \(id=2\): width must be a positive integer, got 0",
    ),
    (
        with_image(2, height=10.5),
        "coco:3:13",
        "bad_image_record",
        r"images\[2\] \(id=3\): height must be a positive integer",
    ),
    (
        with_image(0, file_name=None),
        "coco:1:10",
        "bad_image_record",
        r"images\[0\] \(id=1\): file_name missing",
    ),
    (
        with_image(2, file_name="../outside.jpg"),
        "coco:3:13",
        "unsafe_file_name",
        r"images\[2\] \(id=3\): file name '../outside.jpg' leaves",
    ),
]


@pytest.mark.parametrize(("data", "box_id", "reason", "detail"), BAD_RECORDS)
def test_a_bad_record_is_skipped_and_listed_with_file_and_record(
    tmp_path, data, box_id, reason, detail
):
    path = write_instances(tmp_path / "bad_instances.json", data=data)
    good = read(write_instances(tmp_path / "good.json"), tmp_path)
    rows, rejects = read_skipping(path, tmp_path)
    listed = rejects[rejects["box_id"] == box_id]
    assert listed["reason"].tolist() == [reason], rejects
    detail_text = listed["detail"].iloc[0]
    assert detail_text.startswith(f"{path}: ") and re.search(detail, detail_text), detail_text

    def annotation_ids(box_ids):
        """'coco:1:10' -> '10'; 'coco:annotations[0]' (no usable id) -> the fixture's id there."""
        ids = {b.rsplit(":", 1)[1] for b in box_ids}
        by_index = {f"annotations[{i}]": str(a["id"]) for i, a in enumerate(ANNOTATIONS)}
        return {by_index.get(i, i) for i in ids} - {"annotations[5]"}

    # the boxes lost are exactly those the rejects list (all of an unusable image's boxes)
    lost = annotation_ids(good["box_id"]) - annotation_ids(rows["box_id"])
    assert lost == annotation_ids(rejects["box_id"])
    assert 1 <= len(rejects) <= 2


def test_a_bad_record_of_another_category_is_counted_not_listed(tmp_path):
    path = write_instances(tmp_path / "z.json", data=with_annotation(2, bbox=None))  # the zebra
    rejects = RecordRejects("coco")
    rows = read(path, tmp_path, rejects=rejects, bad_records=LENIENT)
    assert len(rows) == 4 and rejects.counts == {"bad_bbox": 1} and rejects.frame().empty


def test_nan_written_as_a_json_literal_is_skipped(tmp_path):
    text = json.dumps(instances()).replace("[10.5, 20.0, 100.0, 50.25]", "[10.5, NaN, 100.0, 1]")
    assert "NaN" in text
    (tmp_path / "nan.json").write_text(text)
    rows, rejects = read_skipping(tmp_path / "nan.json", tmp_path)
    assert "coco:1:10" not in set(rows["box_id"])
    assert rejects.set_index("box_id").loc["coco:1:10", "reason"] == "bad_bbox"


def test_above_the_fraction_the_read_stops_listing_every_reason(tmp_path):
    anns = copy.deepcopy(ANNOTATIONS)
    anns[0]["bbox"] = None
    anns[1]["category_id"] = 7
    anns[3]["image_id"] = 99
    images = copy.deepcopy(IMAGES)
    images[1]["file_name"] = "/etc/passwd"
    path = write_instances(tmp_path / "many.json", images=images, annotations=anns)
    with pytest.raises(BadRecordsError) as err:
        read(path, tmp_path, bad_records=BadRecordSettings(max_fraction=0.1))
    message = str(err.value)
    assert message.startswith(f"{path}: 4 of 8 records are bad")
    for reason, record in [
        ("bad_bbox", "annotations[0] (id=10)"),
        ("unknown_category", "annotations[1] (id=11)"),
        ("unknown_image", "annotations[3] (id=13)"),
        ("unsafe_file_name", "images[1] (id=2)"),
    ]:
        assert f"  {reason} (" in message and record in message, (reason, message)
    # at the threshold it passes: 4 of 8 is not more than 0.5
    assert len(read(path, tmp_path, bad_records=BadRecordSettings(max_fraction=0.5))) == 1


def test_unknown_category_names_warn_unless_none_is_known(tmp_path, caplog):
    path = write_instances(tmp_path / "cats.json")
    rows = read(path, tmp_path, categories=("giraffe", "Okapi"))
    assert len(rows) == 4 and "no category named ['okapi']" in caplog.text
    with pytest.raises(CocoFormatError) as err:
        read(path, tmp_path, categories=("Okapi",))
    assert str(err.value) == (
        f"{path}: no category named ['okapi']; it has ['giraffe', 'person', 'zebra']"
    )


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../outside.jpg", "sub/../../outside.jpg", "..\\evil.jpg", "C:\\x.jpg"]
)
def test_file_names_that_leave_the_image_folder_are_rejected(tmp_path, name):
    path = write_instances(tmp_path / "unsafe.json", data=with_image(2, file_name=name))
    rows, rejects = read_skipping(path, tmp_path / "img")
    assert "coco:3:13" not in set(rows["box_id"]) and not any(
        "passwd" in p or "outside" in p or "evil" in p for p in rows["image_path"]
    )
    row = rejects.set_index("box_id").loc["coco:3:13"]
    assert row["reason"] == "unsafe_file_name" and repr(name) in row["detail"]
    assert row["detail"].startswith(
        f"{path}: annotations[3] (id=13): its image entry is unusable: {path}: images[2] (id=3)"
    )


def test_an_unsafe_name_of_an_image_without_wanted_boxes_is_not_listed(tmp_path):
    """Only images holding the wanted categories are joined; the others are never opened."""
    path = write_instances(tmp_path / "i.json", data=with_image(2, file_name="/etc/passwd"))
    rejects = RecordRejects("coco")
    rows = read(path, tmp_path, categories=("zebra",), rejects=rejects, bad_records=LENIENT)
    assert rows["box_id"].tolist() == ["coco:2:12"]
    assert rejects.counts == {"unsafe_file_name": 1} and rejects.frame().empty


def test_a_file_is_read_once_and_its_table_kept_for_every_later_category(tmp_path, monkeypatch):
    from pipeline.sources import coco_table

    data = with_annotation(1, image_id=99)  # one bad record too
    path = write_instances(tmp_path / "instances.json", data=data)
    cache = tmp_path / "downloads" / "tables"
    first = RecordRejects("coco")
    giraffes = read(path, tmp_path, rejects=first, bad_records=LENIENT, cache_dir=cache)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".parquet", ".parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "instances.json"]

    def no_parse(*args):
        raise AssertionError("the file was parsed again")

    monkeypatch.setattr(coco_table, "build", no_parse)
    second = RecordRejects("coco")
    again = read(path, tmp_path, rejects=second, bad_records=LENIENT, cache_dir=cache)
    zebras = read(path, tmp_path, categories=("zebra",), bad_records=LENIENT, cache_dir=cache)
    pd.testing.assert_frame_equal(again, giraffes)
    pd.testing.assert_frame_equal(second.frame(), first.frame())
    assert second.counts == first.counts == {"unknown_image": 1}
    monkeypatch.undo()
    assert zebras.equals(read(path, tmp_path, categories=("zebra",), bad_records=LENIENT))
    # the file changes: its table is built anew
    write_instances(path, data=instances())
    fresh = read(path, tmp_path, bad_records=LENIENT, cache_dir=cache)
    assert len(fresh) == 4 and len(list(cache.glob("*.json"))) == 2
