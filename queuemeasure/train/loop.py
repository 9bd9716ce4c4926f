"""Training, validation (vehicle F1 on the held-out sheets) and ONNX export."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..detect.learned._decode import decode
from ..detect.learned._grid import PAD_TO, STRIDE, pad_to
from .model import VehicleNet
from .sheets import Sheet
from .targets import Prepared, chip, prepare

#: probability thresholds tried on the validation sheets
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)


def loss_fn(y: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """CenterNet loss: focal loss on the centre map, L1 on log sizes and offsets at centres."""
    p = y[:, 0].clamp(1e-4, 1 - 1e-4)
    heat, centre, w = t[:, 0], t[:, 5], t[:, 6]
    pos = centre * torch.log(p) * (1 - p) ** 2
    neg = (1 - centre) * (1 - heat) ** 4 * torch.log(1 - p) * p**2
    n = centre.sum().clamp(min=1.0)
    focal = -((pos + neg) * w).sum() / n
    size = (F.l1_loss(y[:, 1:3], t[:, 1:3], reduction="none").sum(1) * centre).sum() / n
    off = (F.l1_loss(y[:, 3:5], t[:, 3:5], reduction="none").sum(1) * centre).sum() / n
    total = focal + 0.5 * size + off
    return total, {"focal": float(focal.detach()), "size": float(size.detach()), "offset": float(off.detach())}


def predict(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The network's output (5, Hs, Ws) for one prepared input (4, R, C)."""
    R, C = x.shape[1:]
    with torch.no_grad():
        y = net(torch.from_numpy(pad_to(x.astype(np.float32), PAD_TO))[None])[0].numpy()
    return y[:, : -(-R // STRIDE), : -(-C // STRIDE)]


def match_counts(out: np.ndarray, s: Sheet, thr: float) -> tuple[int, int, int]:
    """True positives, detections and truth vehicles of one sheet at threshold ``thr``:
    a detection matches a truth box when its centre lies inside it, one to one, strongest
    first; detections centred in an ignored box count neither way."""
    b = decode(out, thr, s.work_step_m)
    order = np.argsort(-b.prob)
    r, c = b.row[order], b.col[order]
    boxes = s.boxes
    used = np.zeros(len(boxes), bool)
    tp = n_det = 0
    for y, x in zip(r, c):
        if len(s.ignore) and np.any((s.ignore[:, 0] <= y) & (y <= s.ignore[:, 1]) &
                                    (s.ignore[:, 2] <= x) & (x <= s.ignore[:, 3])):
            continue
        n_det += 1
        hit = np.flatnonzero((boxes[:, 0] <= y) & (y <= boxes[:, 1]) & (boxes[:, 2] <= x) &
                             (x <= boxes[:, 3]) & ~used)
        if hit.size:
            used[hit[0]] = True
            tp += 1
    return tp, n_det, len(boxes)


def f1(tp: int, n_det: int, n_true: int) -> float:
    return 2 * tp / max(1, n_det + n_true)


def onnx_predictor(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """``predict`` through onnxruntime for an exported model (what the package ships)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> np.ndarray:
        R, C = x.shape[1:]
        y = sess.run(None, {"strip": pad_to(x.astype(np.float32), PAD_TO)[None]})[0][0]
        return y[:, : -(-R // STRIDE), : -(-C // STRIDE)]

    return run


def evaluate(net: torch.nn.Module | Callable[[np.ndarray], np.ndarray],
             val: dict[str, list[tuple[Sheet, Prepared]]]) -> dict[str, dict[float, tuple]]:
    """Counts per validation set and pixel size, at every threshold of :data:`THRESHOLDS`,
    for a network or a predictor (input -> output maps)."""
    is_net = isinstance(net, torch.nn.Module)
    if is_net:
        net.eval()
    res: dict[str, dict[float, list[int]]] = {}
    for name, items in val.items():
        for s, p in items:
            key = f"{name}@{s.gsd_m:.2f}" if name != "val-synth" else name
            out = predict(net, p.x) if is_net else net(p.x)
            acc = res.setdefault(key, {t: [0, 0, 0] for t in THRESHOLDS})
            for t in THRESHOLDS:
                a = match_counts(out, s, t)
                acc[t] = [u + v for u, v in zip(acc[t], a)]
    if is_net:
        net.train()
    return {k: {t: tuple(v) for t, v in d.items()} for k, d in res.items()}


def best_threshold(scores: dict[str, dict[float, tuple]], keys: list[str]) -> float:
    """The threshold with the best mean F1 over the validation sets ``keys``."""
    return max(THRESHOLDS, key=lambda t: np.mean([f1(*scores[k][t]) for k in keys if k in scores]))


def train(sheets: list[Sheet], val: dict[str, list[Sheet]], *, epochs: int, steps: int, batch: int = 16,
          lr: float = 2e-3, seed: int = 0, threads: int = 2, width: int = 16, real_share: float = 0.5, shadows: float = 0.0,
          dashes: float = 0.0, scales: float = 0.0, focus: float = 0.0,
          select: str = "best", threshold: float | None = None,
          log: Callable[[str], None] = print,
          on_best: Callable[[VehicleNet, float, dict], None] | None = None) -> tuple[VehicleNet, float, dict]:
    """Train a :class:`VehicleNet`; returns it (best epoch by real validation F1), its
    threshold and its validation scores. ``real_share`` of each batch is real chips;
    ``shadows`` and ``dashes`` are the probabilities of a shadow band and of a painted
    dashed line on a chip, ``scales`` that of a zoomed chip and ``focus`` that of a chip
    made to hold a vehicle (see :func:`.targets.chip`). ``select="last"`` keeps the last
    epoch instead of the best one and ``threshold`` fixes the probability threshold: with
    both, the validation sets choose nothing and their scores are those of unseen images.
    ``on_best(net, threshold, scores)`` is called after every epoch that improves on the
    best so far (e.g. to export it at once)."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    prep = [prepare(s) for s in sheets]
    real = [i for i, s in enumerate(sheets) if s.source != "synth"]
    synth = [i for i, s in enumerate(sheets) if s.source == "synth"]
    vprep = {k: [(s, prepare(s)) for s in v] for k, v in val.items()}
    # the epoch and threshold are chosen on the real validation sets only (not on test-*)
    real_keys = [k for k in _keys(vprep) if k.startswith("val-") and not k.startswith("val-synth")]
    net = VehicleNet(width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
    best = (-1.0, None, 0.35, {})
    for ep in range(epochs):
        t0, sums = time.time(), {"loss": 0.0, "focal": 0.0, "size": 0.0, "offset": 0.0}
        for _ in range(steps):
            idx = [int(rng.choice(real if (rng.random() < real_share and real) or not synth else synth))
                   for _ in range(batch)]
            xs, ts = zip(*(chip(prep[i], rng, shadows, dashes, scales, focus) for i in idx))
            y = net(torch.from_numpy(np.stack(xs)))
            loss, parts = loss_fn(y, torch.from_numpy(np.stack(ts)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            sums["loss"] += float(loss.detach())
            for k, v in parts.items():
                sums[k] += v
        scores = evaluate(net, vprep)
        if threshold is None:
            thr = best_threshold(scores, real_keys)
        else:
            thr = min(THRESHOLDS, key=lambda u: abs(u - threshold))
        real_f1 = float(np.mean([f1(*scores[k][thr]) for k in real_keys]))
        log(f"epoch {ep + 1}/{epochs} {time.time() - t0:.0f}s " +
            " ".join(f"{k} {v / steps:.3f}" for k, v in sums.items()) +
            f" | thr {thr:.2f} F1 " + " ".join(f"{k} {f1(*scores[k][thr]):.3f}" for k in sorted(scores)))
        if select == "last":
            best = (real_f1, None, thr, scores)
        elif real_f1 > best[0]:
            best = (real_f1, {k: v.clone() for k, v in net.state_dict().items()}, thr, scores)
            if on_best is not None:
                net.eval()
                on_best(net, thr, scores)
                net.train()
    if best[1] is not None:
        net.load_state_dict(best[1])
    net.eval()
    return net, best[2], best[3]


def _keys(vprep: dict) -> list[str]:
    return sorted({f"{k}@{s.gsd_m:.2f}" if k != "val-synth" else k for k, v in vprep.items() for s, _ in v})


def export(net: VehicleNet, path: Path, *, threshold: float, work_step_m: float, meta: dict[str, str]) -> None:
    """Write the network as ONNX (opset 17, dynamic height and width) with its metadata
    (the threshold, the working grid's pixel size ``work_step_m`` that inference reads,
    the stride), and check that onnxruntime gives torch's output."""
    import onnx
    import onnxruntime as ort

    net.eval()
    x = torch.randn(1, 4, 64, 96)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(net, x, str(tmp), opset_version=17, input_names=["strip"], output_names=["maps"],
                      dynamic_axes={"strip": {2: "height", 3: "width"}, "maps": {2: "h2", 3: "w2"}},
                      dynamo=False)
    model = onnx.load(str(tmp))
    for k, v in {**meta, "threshold": f"{threshold:.3f}", "work_step_m": f"{work_step_m:g}",
                 "stride": str(STRIDE)}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=str(v)))
    onnx.save(model, str(tmp))
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    for shape in ((1, 4, 64, 96), (1, 4, 256, 72)):
        xx = torch.randn(*shape)
        with torch.no_grad():
            want = net(xx).numpy()
        got = sess.run(None, {"strip": xx.numpy()})[0]
        err = float(np.abs(got - want).max())
        if err > 1e-3:
            raise RuntimeError(f"onnxruntime differs from torch by {err}")
    tmp.replace(path)
