"""Train the learned vehicle detector and write its ONNX weights.

    python -m queuemeasure.train --out queuemeasure/detect/learned/vehicles.onnx
    python -m queuemeasure.train --work-step 0.5 --min-gsd 0.455 --epochs 16 --steps 150 \
        --out queuemeasure/detect/learned/vehicles_0.5m.onnx      # the model for coarse tiles
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


def _chance(flag: str, what: str):
    """A training option: the probability (0-1, default 0) of a chip ``what``."""
    return click.option(flag, type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
                        help=f"Probability of a training chip {what}.")


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The ONNX file to write.")
@click.option("--epochs", type=click.IntRange(1), default=7, show_default=True)
@click.option("--steps", type=click.IntRange(1), default=100, show_default=True, help="Batches per epoch.")
@click.option("--batch", type=click.IntRange(1), default=16, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option("--work-step", type=click.FloatRange(0.05, 2.0), default=0.25, show_default=True,
              help="Pixel size (m) of the working grid the network sees; stored in the model.")
@click.option("--min-gsd", type=click.FloatRange(0.0, 2.0), default=0.0, show_default=True,
              help="Train and validate only on images whose own pixel size is at least this (m); "
                   "stored in the model as the finest strip pixel it serves.")
@click.option("--width", type=click.IntRange(4, 64), default=16, show_default=True,
              help="Channels of the network's first layer (the others are multiples).")
@click.option("--real-share", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Share of each batch drawn from the real images.")
@_chance("--shadows", "with a random shadow band")
@_chance("--dashes", "with a painted dashed line (a hard negative)")
@_chance("--scales", "zoomed by 0.8-1.25 (vehicles larger or smaller than in the image)")
@_chance("--focus", "placed to hold a vehicle (drawn in proportion to its length)")
@click.option("--select", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Keep the epoch with the best real validation F1, or the last one.")
@click.option("--threshold", type=click.FloatRange(0.05, 0.95), default=None,
              help="A fixed probability threshold, one of 0.2, 0.25, ... 0.5, 0.6 (the nearest is used; default: the one "
                   "that maximises the real validation F1).")
@click.option("--test-flights", default="", show_default=False, metavar="FLIGHT[,FLIGHT]",
              help="Minsk flights (file-name prefixes; 'single' for the photos of no sequence) held out "
                   "from training and from the choice of epoch and threshold: a test set, reported as test-minsk.")
@click.option("--smoke", is_flag=True, help="A seconds-long run on a few sheets (checks the machinery).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the validation scores as JSON here.")
@click.option("--evaluate", "evaluate_only", is_flag=True,
              help="Do not train: score the existing --out model (onnxruntime) on the validation sets.")
def main(out: Path, epochs: int, steps: int, batch: int, lr: float, seed: int, threads: int, work_step: float,
         min_gsd: float, width: int, real_share: float, shadows: float, dashes: float, scales: float,
         focus: float, select: str, threshold: float | None, test_flights: str, smoke: bool,
         report: Path | None, evaluate_only: bool) -> None:
    """Train the learned vehicle detector; print per-epoch loss and validation F1."""
    from . import sheets as S
    from .loop import export, f1, train

    def log(msg: str) -> None:
        click.echo(msg)
        sys.stdout.flush()

    tests = tuple(f.strip() for f in test_flights.split(",") if f.strip())
    if evaluate_only:
        _evaluate(out, S, log, report, min_gsd, tests)
        return

    if smoke:
        data = _smoke_data(S, work_step)
        epochs, steps, batch = 1, 2, 4
    else:
        data = S.datasets(work_step_m=work_step, min_gsd=min_gsd, test_flights=tests, log=log)
    train_sheets = data.pop("train")
    log(f"training on {len(train_sheets)} sheets "
        f"({sum(len(s.boxes) for s in train_sheets)} vehicles); validation: "
        + ", ".join(f"{k} {len(v)}" for k, v in data.items()))
    meta = {
        "name": "queuemeasure vehicle detector", "queuemeasure_version": __version__,
        "licence": "CC BY-SA 4.0 (trained on KIT AIS, CC BY 3.0, and aerial-cars-dataset images and "
                   "labels, CC BY-SA, by Yauhen Kharuzhy and the Minsk OSM community; see MODEL.md)",
        "training": json.dumps({"epochs": epochs, "steps": steps, "batch": batch, "lr": lr, "seed": seed,
                                "smoke": smoke, "work_step_m": work_step, "min_gsd": min_gsd,
                                "real_share": real_share, "shadows": shadows, "dashes": dashes,
                                "scales": scales, "focus": focus, "select": select,
                                "fixed_threshold": threshold, "width": width, "test_flights": list(tests)}),
        "min_step_m": f"{min_gsd:g}",
    }

    def save(net, thr, scores) -> None:  # every better epoch: weights usable at once
        export(net, out, threshold=thr, work_step_m=work_step, meta={**meta, "validation": json.dumps(
            {k: round(f1(*v[thr]), 4) for k, v in scores.items()})})
        log(f"  -> wrote {out}")

    net, thr, scores = train(train_sheets, data, epochs=epochs, steps=steps, batch=batch, lr=lr, seed=seed,
                             threads=threads, width=width, real_share=real_share, shadows=shadows,
                             dashes=dashes, scales=scales, focus=focus, select=select, threshold=threshold,
                             log=log, on_best=save if select == "best" else None)
    if select == "last":
        save(net, thr, scores)
    final = {k: {"threshold": thr, "tp_det_true": scores[k][thr], "f1": round(f1(*scores[k][thr]), 4)}
             for k in sorted(scores)}
    log(f"wrote {out} (threshold {thr:.2f})")
    for k, v in final.items():
        log(f"  {k}: F1 {v['f1']:.3f} (tp, detections, truth = {v['tp_det_true']})")
    if report is not None:
        report.write_text(json.dumps(final, indent=1))


def _evaluate(path: Path, S, log, report: Path | None, min_gsd: float, tests: tuple[str, ...] = ()) -> None:  # noqa: N803 - the sheets module
    """Validation F1 of a shipped model, at its own threshold and at the others tried, on
    its own working grid (from its metadata), on the images of pixel size at least
    ``min_gsd`` or, if larger, the finest the model serves."""
    import onnx

    from ..detect.learned import model_grid
    from .loop import THRESHOLDS, evaluate, f1, onnx_predictor
    from .targets import prepare

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    thr = float(meta.get("threshold", 0.35))
    work_step, min_step = model_grid(meta, str(path))
    data = S.datasets(work_step_m=work_step, min_gsd=max(min_gsd, min_step), test_flights=tests, log=log)
    data.pop("train")
    scores = evaluate(onnx_predictor(path), {k: [(s, prepare(s)) for s in v] for k, v in data.items()})
    log(f"{path}: threshold {thr:.2f}")
    final = {}
    for k in sorted(scores):
        t = min(THRESHOLDS, key=lambda u: abs(u - thr))
        tp, nd, nt = scores[k][t]
        final[k] = {"f1": round(f1(tp, nd, nt), 4), "precision": round(tp / max(nd, 1), 4),
                    "recall": round(tp / max(nt, 1), 4), "tp_det_true": [tp, nd, nt]}
        log(f"  {k}: F1 {final[k]['f1']:.3f} (P {final[k]['precision']:.3f}, R {final[k]['recall']:.3f}; "
            f"{tp} of {nt} found, {nd} detections); by threshold: "
            + " ".join(f"{u:.2f}:{f1(*scores[k][u]):.3f}" for u in THRESHOLDS))
    if report is not None:
        report.write_text(json.dumps(final, indent=1))


def _smoke_data(S, work_step: float):  # noqa: N803 - the sheets module
    """Two KIT frames and a SYNTHETIC scene, not cached (for the smoke test)."""
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as d:
        kw = S.random_spec(np.random.default_rng(1), 1)
        kw.update(gsd_m=0.5, road_length_m=150.0, queue_length_m=80.0)
        syn = S.synth_sheet(kw, Path(d), half_width_m=8.0, work_step_m=work_step)
    return {"train": S.kit_sheets(["MOS155"], degrade=(), work_step_m=work_step) + [syn],
            "val-kit": S.kit_sheets(["MOS173"], degrade=(), work_step_m=work_step)}


if __name__ == "__main__":  # pragma: no cover
    main()
