"""Train the learned vehicle detector and write its ONNX weights.

    python -m queuemeasure.train --out queuemeasure/detect/learned/vehicles.onnx
    python -m queuemeasure.train --smoke --out /tmp/smoke.onnx     # seconds, for CI

Needs the ``[train]`` extra (torch, onnx, pillow) and, for the real data, the labelled
frames in ``../shared/realdata`` (see MODEL.md). Sheets are cached in
``~/.cache/queuemeasure-train`` (``$QUEUEMEASURE_TRAIN_CACHE``). Seeded: the same command
gives the same weights on the same machine and library versions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .._version import __version__


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The ONNX file to write.")
@click.option("--epochs", type=click.IntRange(1), default=14, show_default=True)
@click.option("--steps", type=click.IntRange(1), default=100, show_default=True, help="Batches per epoch.")
@click.option("--batch", type=click.IntRange(1), default=16, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option("--smoke", is_flag=True, help="A seconds-long run on a few sheets (checks the machinery).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the validation scores as JSON here.")
def main(out: Path, epochs: int, steps: int, batch: int, lr: float, seed: int, threads: int, smoke: bool,
         report: Path | None) -> None:
    """Train the learned vehicle detector; print per-epoch loss and validation F1."""
    from . import sheets as S
    from .loop import export, f1, train

    def log(msg: str) -> None:
        click.echo(msg)
        sys.stdout.flush()

    if smoke:
        data = _smoke_data(S)
        epochs, steps, batch = 1, 2, 4
    else:
        data = S.datasets(log=log)
    train_sheets = data.pop("train")
    log(f"training on {len(train_sheets)} sheets "
        f"({sum(len(s.boxes) for s in train_sheets)} vehicles); validation: "
        + ", ".join(f"{k} {len(v)}" for k, v in data.items()))
    meta = {
        "name": "queuemeasure vehicle detector", "queuemeasure_version": __version__,
        "licence": "CC BY-SA 4.0 (trained on KIT AIS, CC BY 3.0, and aerial-cars-dataset images and "
                   "labels, CC BY-SA, by Yauhen Kharuzhy and the Minsk OSM community; see MODEL.md)",
        "training": json.dumps({"epochs": epochs, "steps": steps, "batch": batch, "lr": lr, "seed": seed,
                                "smoke": smoke}),
    }

    def save(net, thr, scores) -> None:  # every better epoch: weights usable at once
        export(net, out, threshold=thr, meta={**meta, "validation": json.dumps(
            {k: round(f1(*v[thr]), 4) for k, v in scores.items()})})
        log(f"  -> wrote {out}")

    net, thr, scores = train(train_sheets, data, epochs=epochs, steps=steps, batch=batch, lr=lr, seed=seed,
                             threads=threads, log=log, on_best=save)
    final = {k: {"threshold": thr, "tp_det_true": scores[k][thr], "f1": round(f1(*scores[k][thr]), 4)}
             for k in sorted(scores)}
    log(f"wrote {out} (threshold {thr:.2f})")
    for k, v in final.items():
        log(f"  {k}: F1 {v['f1']:.3f} (tp, detections, truth = {v['tp_det_true']})")
    if report is not None:
        report.write_text(json.dumps(final, indent=1))


def _smoke_data(S):  # noqa: N803 - the sheets module
    """Two KIT frames and a SYNTHETIC scene, not cached (for the smoke test)."""
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as d:
        kw = S.random_spec(np.random.default_rng(1), 1)
        kw.update(gsd_m=0.5, road_length_m=150.0, queue_length_m=80.0)
        syn = S.synth_sheet(kw, Path(d), half_width_m=8.0)
    return {"train": S.kit_sheets(["MOS155"], degrade=()) + [syn],
            "val-kit": S.kit_sheets(["MOS173"], degrade=())}


if __name__ == "__main__":  # pragma: no cover
    main()
