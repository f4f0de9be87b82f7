"""Visual Genome, OpenImages, CelebA and FFHQ from a server on 127.0.0.1, in their real layouts."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.crops import upright
from pipeline.download import DownloadSettings
from pipeline.sources import celeba, ffhq, openimages, visual_genome
from tests.httpserver import photo_jpeg, zip_bytes

FAST = DownloadSettings(workers=4, retries=1, backoff=0.01, timeout=5.0, max_failure_fraction=0.0)
VG_PREFIX = "https://cs.stanford.edu/people/rak248"


def jpeg(width: int, height: int, colour=(120, 160, 60)) -> bytes:
    return photo_jpeg(width, height, seed=sum(colour))


# --- Visual Genome ---------------------------------------------------------------------------

VG_IMAGES = [
    {
        "image_id": 1,
        "url": f"{VG_PREFIX}/VG_100K/1.jpg",
        "width": 500,
        "height": 400,
        "coco_id": None,
        "flickr_id": 5,
    },
    {
        "image_id": 2,
        "url": f"{VG_PREFIX}/VG_100K_2/2.jpg",
        "width": 640,
        "height": 480,
        "coco_id": 139,
        "flickr_id": None,
    },
    {
        "image_id": 3,
        "url": f"{VG_PREFIX}/VG_100K/3.jpg",
        "width": 300,
        "height": 300,
        "coco_id": None,
        "flickr_id": None,
    },
]
VG_OBJECTS = [
    {
        "image_id": 1,
        "objects": [
            {
                "object_id": 11,
                "x": 10,
                "y": 20,
                "w": 100,
                "h": 150,
                "names": ["Giraffes"],
                "synsets": ["giraffe.n.01"],
                "merged_object_ids": [],
            },
            {
                "object_id": 12,
                "x": 12,
                "y": 21,
                "w": 100,
                "h": 148,
                "names": ["giraffe"],
                "synsets": [],
                "merged_object_ids": [],
            },
            {
                "object_id": 13,
                "x": 300,
                "y": 100,
                "w": 250,
                "h": 120,
                "names": ["giraffe "],
                "synsets": [],
                "merged_object_ids": [],
            },
            {
                "object_id": 14,
                "x": 0,
                "y": 0,
                "w": 50,
                "h": 50,
                "names": ["tree"],
                "synsets": ["tree.n.01"],
                "merged_object_ids": [],
            },
            {
                "object_id": 15,
                "x": 0,
                "y": 0,
                "w": 50,
                "h": 50,
                "names": ["giraffe"],
                "synsets": ["spot.n.01"],
                "merged_object_ids": [],
            },
        ],
    },
    {
        "image_id": 2,
        "objects": [
            {
                "object_id": 21,
                "x": 5,
                "y": 5,
                "w": 90,
                "h": 90,
                "names": ["giraffe"],
                "synsets": ["giraffe.n.01"],
            }
        ],
    },
    {
        "image_id": 3,
        "objects": [
            {
                "object_id": 31,
                "x": 5,
                "y": 5,
                "w": 90,
                "h": 90,
                "names": ["zebra"],
                "synsets": ["zebra.n.01"],
            }
        ],
    },
]


def serve_vg(server) -> visual_genome.VisualGenomeSettings:
    server.add(
        "/vg/image_data.json.zip", zip_bytes({"image_data.json": json.dumps(VG_IMAGES).encode()})
    )
    server.add("/vg/objects.json.zip", zip_bytes({"objects.json": json.dumps(VG_OBJECTS).encode()}))
    for image in VG_IMAGES:
        server.add(
            "/rak248" + image["url"].removeprefix(VG_PREFIX), jpeg(image["width"], image["height"])
        )
    return visual_genome.VisualGenomeSettings(
        base_url=server.url("/vg"), image_url_prefix=VG_PREFIX, image_base_url=server.url("/rak248")
    )


def vg_boxes(server, tmp_path: Path, drop_coco: bool):
    s = serve_vg(server)
    image_data, objects = tmp_path / "vg/image_data.json", tmp_path / "vg/objects.json"
    visual_genome.download_metadata(s, download=FAST, image_data=image_data, objects=objects)
    boxes, _ = visual_genome.visual_genome_boxes(
        s,
        image_data=image_data,
        objects=objects,
        image_root=tmp_path / "vg/images",
        categories=("giraffe",),
        drop_coco_images=drop_coco,
        download=FAST,
        failures=tmp_path / "f.tsv",
    )
    return boxes


def test_visual_genome_matches_synsets_and_names_and_drops_duplicates(http_server, tmp_path):
    boxes = vg_boxes(http_server, tmp_path, drop_coco=True).set_index("box_id")
    assert list(boxes.index) == ["visual_genome:1:11", "visual_genome:1:13"]
    assert boxes.loc["visual_genome:1:11", ["x0", "y0", "x1", "y1"]].tolist() == [10, 20, 110, 170]
    assert boxes.loc["visual_genome:1:13", ["x0", "y0", "x1", "y1"]].tolist() == [
        300,
        100,
        500,
        220,
    ]  # clipped
    assert boxes.loc["visual_genome:1:11", "image_path"] == str(
        tmp_path / "vg/images/VG_100K/1.jpg"
    )
    fetched = [p for p in http_server.requested_paths() if p.startswith("/rak248")]
    assert fetched == ["/rak248/VG_100K/1.jpg"]  # not the COCO image 2, not the zebra image 3


def test_visual_genome_keeps_coco_images_without_coco_in_the_experiment(http_server, tmp_path):
    boxes = vg_boxes(http_server, tmp_path, drop_coco=False)
    assert "visual_genome:2:21" in set(boxes["box_id"])


def test_visual_genome_name_forms():
    forms = visual_genome.name_forms("giraffe")
    assert {"giraffe", "giraffes"} <= forms and "giraff" not in forms
    assert "ponies" in visual_genome.name_forms("pony")
    assert visual_genome.matches({"names": [" Giraffes "], "synsets": []}, "giraffe", forms)
    assert not visual_genome.matches(
        {"names": ["giraffe"], "synsets": ["spot.n.01"]}, "giraffe", forms
    )


def test_visual_genome_refuses_image_urls_of_other_hosts(http_server, tmp_path):
    VG_IMAGES.append(
        {
            "image_id": 4,
            "url": "http://evil.example/4.jpg",
            "width": 100,
            "height": 100,
            "coco_id": None,
        }
    )
    VG_OBJECTS.append(
        {
            "image_id": 4,
            "objects": [
                {
                    "object_id": 41,
                    "x": 0,
                    "y": 0,
                    "w": 90,
                    "h": 90,
                    "names": ["giraffe"],
                    "synsets": [],
                }
            ],
        }
    )
    try:
        with pytest.raises(Exception, match="f.tsv"):
            vg_boxes(http_server, tmp_path, drop_coco=True)
        assert "host not allowed" in (tmp_path / "f.tsv").read_text()
    finally:
        VG_IMAGES.pop()
        VG_OBJECTS.pop()


# --- OpenImages ------------------------------------------------------------------------------

OI_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside,XClick1X,XClick2X,XClick3X,XClick4X,XClick1Y,XClick2Y,XClick3Y,XClick4Y"
OI_TRAIN = [
    "aaaa000000000001,xclick,/m/03bk1,1,0.1,0.5,0.2,0.6,0,1,0,0,0,-1,-1,-1,-1,-1,-1,-1,-1",
    "aaaa000000000001,xclick,/m/0898b,1,0.0,0.2,0.0,0.2,0,0,0,0,0,-1,-1,-1,-1,-1,-1,-1,-1",
    "bbbb000000000002,xclick,/m/03bk1,1,0.25,0.75,0.0,1.0,1,0,1,-1,0,-1,-1,-1,-1,-1,-1,-1,-1",
]
OI_IMAGES_HEADER = "ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,Title,OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation"


def serve_openimages(server, train_rows=OI_TRAIN) -> openimages.OpenImagesSettings:
    server.add(
        "/oi/v7/classes.csv", b"/m/0898b,Zebra\n/m/03bk1,Giraffe\n"
    )  # the v5 file: no header
    server.add("/oi/v6/train-bbox.csv", "\n".join([OI_HEADER, *train_rows]).encode())
    server.add("/oi/v5/validation-bbox.csv", (OI_HEADER + "\n").encode())
    images = [
        OI_IMAGES_HEADER,
        "aaaa000000000001,train,u,l,c,a,x,t,1,m,th,0.0",
        "bbbb000000000002,train,u,l,c,a,x,t,1,m,th,90.0",
        "cccc000000000003,train,u,l,c,a,x,t,1,m,th,",
    ]
    server.add("/oi/2018_04/train/images.csv", "\n".join(images).encode())
    server.add("/oi/2018_04/validation/images.csv", (OI_IMAGES_HEADER + "\n").encode())
    server.add("/s3/train/aaaa000000000001.jpg", jpeg(400, 300))
    server.add("/s3/train/bbbb000000000002.jpg", jpeg(200, 100))
    return openimages.OpenImagesSettings(
        base_url=server.url("/oi"),
        classes_file="v7/classes.csv",
        boxes_files={"train": "v6/train-bbox.csv", "validation": "v5/validation-bbox.csv"},
        images_files={
            "train": "2018_04/train/images.csv",
            "validation": "2018_04/validation/images.csv",
        },
        splits=("train", "validation"),
        image_base_url=server.url("/s3"),
        chunk_rows=1000,
    )


def oi_boxes(server, tmp_path: Path, **kw):
    s = serve_openimages(server, **kw)
    files = openimages.metadata_files(s, tmp_path / "oi/metadata")
    openimages.download_metadata(s, download=FAST, paths=files)
    boxes, rejects = openimages.openimages_boxes(
        s,
        files=files,
        image_root=tmp_path / "oi/images",
        categories=("giraffe",),
        download=FAST,
        failures=tmp_path / "f.tsv",
    )
    assert rejects.empty
    return boxes


def test_openimages_boxes_in_pixels_with_flags_and_rotation(http_server, tmp_path):
    boxes = oi_boxes(http_server, tmp_path).set_index("image_id")
    assert sorted(boxes.index) == ["aaaa000000000001", "bbbb000000000002"]
    a, b = boxes.loc["aaaa000000000001"], boxes.loc["bbbb000000000002"]
    assert [a.x0, a.y0, a.x1, a.y1] == pytest.approx([40, 60, 200, 180])
    assert [b.x0, b.y0, b.x1, b.y1] == pytest.approx([50, 0, 150, 100])
    assert (a.image_width, a.image_height, a.rotation, b.rotation) == (400, 300, 0, 90)
    assert a.is_truncated and not a.is_occluded and not a.is_group
    assert b.is_occluded and b.is_group and pd.isna(b.is_depiction)  # -1: unknown
    assert a.category == "giraffe" and a.split == "train"
    assert not any("cccc" in p for p in http_server.requested_paths())


def test_openimages_bad_row_is_named_with_its_line(http_server, tmp_path):
    rows = [
        *OI_TRAIN,
        "dddd000000000004,xclick,/m/03bk1,1,0.7,0.5,0.2,0.6,0,0,0,0,0,-1,-1,-1,-1,-1,-1,-1,-1",
    ]
    with pytest.raises(
        openimages.OpenImagesFormatError,
        match=r"train-bbox.csv: line 5 \(ImageID dddd000000000004\)",
    ):
        oi_boxes(http_server, tmp_path, train_rows=rows)


def test_openimages_unknown_class_is_named(tmp_path):
    (tmp_path / "c.csv").write_text("LabelName,DisplayName\n/m/0898b,Zebra\n")
    with pytest.raises(openimages.OpenImagesFormatError, match=r"no class named \['okapi'\]"):
        openimages.label_ids(tmp_path / "c.csv", ("okapi",))


def test_rotation_turns_the_crop_counter_clockwise():
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[0, :] = (255, 0, 0)  # the top row is red
    turned = np.asarray(upright(Image.fromarray(pixels), 90))
    assert (turned[:, 0] == (255, 0, 0)).all()  # a quarter turn left puts it on the left
    assert np.asarray(upright(Image.fromarray(pixels), None)).tolist() == pixels.tolist()


# --- CelebA ----------------------------------------------------------------------------------


def serve_celeba(server, md5_wrong: bool = False) -> celeba.CelebASettings:
    images = {
        f"img_align_celeba/{i:06d}.jpg": jpeg(178, 218, (i * 40, 90, 90)) for i in range(1, 5)
    }
    files = {
        "img_align_celeba.zip": zip_bytes(images),
        "list_attr_celeba.txt": b"4\n5_o_Clock_Shadow Smiling Eyeglasses\n000001.jpg -1  1 -1\n000002.jpg  1 -1 -1\n000003.jpg -1  1  1\n000004.jpg -1  1 -1\n",
        "list_eval_partition.txt": b"000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n",
    }
    for name, data in files.items():
        server.add(f"/celeba/{name}", data)
    return celeba.CelebASettings(
        url_template=server.url("/celeba/{name}"),
        files={
            n: {"drive_id": "x", "md5": "0" * 32 if md5_wrong else hashlib.md5(d).hexdigest()}
            for n, d in files.items()
        },
        attributes={"Smiling": True, "Eyeglasses": False},
        partitions=("train", "test"),
    )


def test_celeba_centre_crops_of_the_chosen_faces(http_server, tmp_path):
    s = serve_celeba(http_server)
    boxes, _ = celeba.celeba_boxes(
        s, download=FAST, folder=tmp_path / "celeba", image_root=tmp_path / "celeba/images"
    )
    assert boxes["box_id"].tolist() == [
        "celeba:000001",
        "celeba:000004",
    ]  # smiling, no glasses, train/test
    assert boxes.loc[0, ["x0", "y0", "x1", "y1"]].tolist() == [35, 55, 143, 163]
    assert boxes["split"].tolist() == ["train", "test"]
    assert sorted(p.name for p in (tmp_path / "celeba/images/img_align_celeba").iterdir()) == [
        "000001.jpg",
        "000004.jpg",
    ]


def test_celeba_from_local_files_and_md5_check(http_server, tmp_path):
    s = serve_celeba(http_server)
    celeba.fetch_files(s, FAST, tmp_path / "have")
    before = len(http_server.log)
    local = celeba.CelebASettings(
        **{
            **s.__dict__,
            "local_dir": str(tmp_path / "have"),
            "url_template": "https://drive.google.com/uc?id={drive_id}",
        }
    )
    assert (
        len(
            celeba.celeba_boxes(
                local, download=FAST, folder=tmp_path / "have", image_root=tmp_path / "c2/images"
            )[0]
        )
        == 2
    )
    assert len(http_server.log) == before  # nothing fetched
    with pytest.raises(RuntimeError, match="md5 mismatch"):
        celeba.fetch_files(serve_celeba(http_server, md5_wrong=True), FAST, tmp_path / "bad")


def test_celeba_unknown_attribute_is_named(http_server, tmp_path):
    s = celeba.CelebASettings(
        **{**serve_celeba(http_server).__dict__, "attributes": {"Smilng": True}}
    )
    with pytest.raises(celeba.CelebAFormatError, match="Smilng"):
        celeba.celeba_boxes(
            s, download=FAST, folder=tmp_path / "celeba", image_root=tmp_path / "celeba/images"
        )


# --- FFHQ ------------------------------------------------------------------------------------


def png(size: int, value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_ffhq_thumbnails_verified_and_whole_image_boxes(http_server, tmp_path):
    metadata = {}
    for i in range(3):
        data = png(128, 50 * i)
        path = f"thumbnails128x128/00000/{i:05d}.png"
        http_server.add(f"/ffhq/{path}", data if i != 2 else b"wrong bytes")
        info = {
            "file_url": http_server.url(f"/ffhq/{path}"),
            "file_path": path,
            "file_size": len(data),
            "file_md5": hashlib.md5(data).hexdigest(),
            "pixel_size": [128, 128],
            "pixel_md5": "x",
        }
        metadata[str(i)] = {
            "image": {**info, "pixel_size": [1024, 1024]},
            "thumbnail": info,
            "in_the_wild": {},
            "metadata": {},
        }
    meta_bytes = json.dumps(metadata).encode()
    http_server.add("/ffhq/ffhq-dataset-v2.json", meta_bytes)
    s = ffhq.FFHQSettings(
        metadata_url=http_server.url("/ffhq/ffhq-dataset-v2.json"),
        metadata_md5=hashlib.md5(meta_bytes).hexdigest(),
        allowed_hosts=("127.0.0.1",),
    )
    tolerant = DownloadSettings(
        workers=2, retries=1, backoff=0.01, timeout=5.0, max_failure_fraction=0.5
    )
    boxes, rejects = ffhq.ffhq_boxes(
        s, download=tolerant, folder=tmp_path / "ffhq", failures=tmp_path / "f.tsv"
    )
    assert rejects.empty  # downloads that fail are listed in the failures file
    assert boxes["box_id"].tolist() == ["ffhq:00000", "ffhq:00001"]
    assert boxes.loc[1, ["x0", "y0", "x1", "y1"]].tolist() == [0, 0, 128, 128]
    assert "00002.png" in (tmp_path / "f.tsv").read_text()
    assert (tmp_path / "ffhq/thumbnails128x128/00000/00001.png").exists()


def test_multi_word_categories_match_by_name_or_synset_in_one_form():
    forms = visual_genome.name_forms("Teddy  Bear")
    assert "teddy bear" in forms and "teddy bears" in forms
    teddy = {"names": ["teddy bear"], "synsets": ["teddy.n.01"]}  # as VG writes them
    assert visual_genome.matches(teddy, "teddy bear", forms)
    by_synset = {"names": ["toy"], "synsets": ["teddy_bear.n.01"]}
    assert visual_genome.matches(by_synset, "teddy bear", forms)
    assert not visual_genome.matches(
        {"names": ["bear"], "synsets": ["bear.n.01"]}, "teddy bear", forms
    )


def test_every_source_writes_the_category_in_one_form(tmp_path):
    (tmp_path / "c.csv").write_text(
        "LabelName,DisplayName\n/m/03bk1,Giraffe\n/m/0dv9c,Teddy bear\n"
    )
    labels = openimages.label_ids(tmp_path / "c.csv", ("GIRAFFE", "teddy  Bear"))
    assert labels == {"/m/03bk1": "giraffe", "/m/0dv9c": "teddy bear"}
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps(VG_OBJECTS))
    found = {c for *_, c, _ in visual_genome.iter_objects(objects, ("Giraffe",))}
    assert found == {"giraffe"}
