"""The boxes table: one schema for every source, merged parts, and the contract checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.boxes import COLUMNS, SCHEMA, empty_boxes, merge_boxes, normalise, validate_boxes


def row(box_id: str) -> dict:
    return {"box_id": box_id, "source": box_id.split(":")[0], "x0": 0, "y0": 0, "x1": 4, "y1": 3}


def rows_of(*ids: str, **extra) -> list[dict]:
    return [{**row(i), **extra} for i in ids]


def test_normalise_gives_exactly_the_schema_columns_and_types():
    frame = normalise(
        [
            {
                **row("b:2"),
                "image_width": 5,
                "image_height": 6,
                "rotation": 90,
                "is_crowd": True,
                "split": "train",
                "extra": "dropped",
            },
            {**row("a:1"), "image_width": 7, "image_height": 8, "rotation": 0, "is_crowd": False},
        ]
    )
    assert list(frame.columns) == COLUMNS
    assert "extra" not in frame.columns
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in ("x0", "y0", "x1", "y1"):
        assert table.schema.field(name).type == pa.float64()
    assert table.schema.field("image_width").type == pa.int32()
    assert table.schema.field("rotation").type == pa.int16()
    assert table.schema.field("is_crowd").type == pa.bool_()
    assert frame["x1"].tolist() == [4.0, 4.0]  # integers given, floats kept
    assert frame["image_width"].tolist() == [7, 5]
    assert frame["rotation"].tolist() == [0, 90]
    assert frame["is_crowd"].tolist() == [False, True]


def test_normalise_sorts_by_box_id_and_resets_the_index():
    frame = normalise(rows_of("c:3", "a:10", "b:1", "a:2"))
    assert frame["box_id"].tolist() == ["a:10", "a:2", "b:1", "c:3"]  # string order
    assert frame.index.tolist() == [0, 1, 2, 3]
    assert frame["source"].tolist() == ["a", "a", "b", "c"]


def test_normalise_fills_missing_columns_with_nulls():
    frame = normalise(rows_of("a:1"))
    for name in ("image_path", "image_url", "category", "split", *SCHEMA.names[12:]):
        assert frame[name].isna().all(), name
    assert frame.loc[0, "box_id"] == "a:1"


FULL = {
    "image_path": "/i/a.jpg",
    "image_url": "http://h/a.jpg",
    "image_width": 30,
    "image_height": 20,
    "category": "thing",
    "is_crowd": False,
    "is_group": True,
    "is_truncated": False,
    "is_occluded": False,
    "is_depiction": False,
    "split": "train",
    "rotation": 270,
}


def test_a_full_table_round_trips_through_parquet_with_the_schema(tmp_path):
    frame = normalise([{**r, **FULL} for r in rows_of("b:1", "a:1")])
    frame.to_parquet(tmp_path / "b.parquet")
    schema = pq.read_schema(tmp_path / "b.parquet")
    assert schema.names == COLUMNS
    for field in SCHEMA:
        got = schema.field(field.name).type
        if pa.types.is_string(field.type):
            assert pa.types.is_string(got) or pa.types.is_large_string(got), field.name
        else:
            assert got == field.type, field.name
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "b.parquet"), frame)


def test_normalise_of_nothing_is_the_empty_table():
    empty = normalise([])
    assert empty.empty and list(empty.columns) == COLUMNS
    assert list(empty_boxes().columns) == COLUMNS and empty_boxes().empty


def test_normalise_refuses_a_value_of_the_wrong_type():
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        normalise([{**row("a:1"), "x0": "left"}])


def write_part(path, frame: pd.DataFrame):
    frame.to_parquet(path)
    return path


def test_merge_concatenates_parts_sorted_and_writes_the_output(tmp_path):
    coco = normalise(rows_of("coco:2:1", "coco:1:1", category="giraffe"))
    vg = normalise(rows_of("vg:5:9", category="giraffe", is_group=True))
    parts = [write_part(tmp_path / "vg.parquet", vg), write_part(tmp_path / "coco.parquet", coco)]
    merged = merge_boxes(parts, output=tmp_path / "out" / "boxes.parquet")
    assert merged["box_id"].tolist() == ["coco:1:1", "coco:2:1", "vg:5:9"]
    assert merged["is_group"].tolist() == [None, None, True]
    assert list(merged.columns) == COLUMNS
    written = pd.read_parquet(tmp_path / "out" / "boxes.parquet")
    pd.testing.assert_frame_equal(normalise(written), merged)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left beside it


def test_merge_of_no_parts_writes_an_empty_table(tmp_path):
    merged = merge_boxes([], output=tmp_path / "boxes.parquet")
    assert merged.empty and list(merged.columns) == COLUMNS
    assert pd.read_parquet(tmp_path / "boxes.parquet").empty


def test_merge_refuses_a_box_id_in_two_parts(tmp_path):
    a = write_part(tmp_path / "a.parquet", normalise(rows_of("x:1", "x:2")))
    b = write_part(tmp_path / "b.parquet", normalise(rows_of("x:2")))
    with pytest.raises(ValueError, match=r"^merged boxes: duplicate box_id 'x:2'$"):
        merge_boxes([a, b], output=tmp_path / "boxes.parquet")
    assert not (tmp_path / "boxes.parquet").exists()


def test_merge_names_the_part_that_breaks_the_contract(tmp_path):
    good = write_part(tmp_path / "good.parquet", normalise(rows_of("a:1")))
    frame = normalise(rows_of("b:1", "b:2"))
    frame.loc[1, "y1"] = np.nan
    bad = write_part(tmp_path / "bad.parquet", frame)
    with pytest.raises(ValueError, match=r"bad\.parquet: box 'b:2' has non-finite coordinates"):
        merge_boxes([good, bad], output=tmp_path / "boxes.parquet")
    short = write_part(tmp_path / "short.parquet", frame.drop(columns=["x1", "split"]))
    with pytest.raises(
        ValueError, match=r"short\.parquet: boxes table lacks columns \['x1', 'split'\]"
    ):
        merge_boxes([short], output=tmp_path / "boxes.parquet")


def test_validate_accepts_a_good_table():
    validate_boxes(normalise(rows_of("a:1", "a:2")), "origin")
    validate_boxes(empty_boxes(), "origin")


def test_validate_rejects_duplicate_ids_naming_the_origin():
    frame = normalise(rows_of("a:1", "a:2", "a:3"))
    frame.loc[2, "box_id"] = "a:1"
    with pytest.raises(ValueError, match=r"^my/source\.parquet: duplicate box_id 'a:1'$"):
        validate_boxes(frame, "my/source.parquet")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, None])
@pytest.mark.parametrize("column", ["x0", "y0", "x1", "y1"])
def test_validate_rejects_non_finite_coordinates_naming_the_origin_and_box(column, value):
    frame = normalise(rows_of("a:1", "a:2", "a:3"))
    frame.loc[1, column] = value
    with pytest.raises(ValueError, match=r"^origin: box 'a:2' has non-finite coordinates$"):
        validate_boxes(frame, "origin")


def test_validate_rejects_missing_columns():
    frame = normalise(rows_of("a:1")).drop(columns=["rotation"])
    with pytest.raises(ValueError, match=r"origin: boxes table lacks columns \['rotation'\]"):
        validate_boxes(frame, "origin")
