"""BasicSR's own Real-ESRGAN x4plus chain as a whole command: a folder of photos in, LQ PNGs out.

    python bench/basicsr_degrade.py IN_DIR OUT_DIR [--batch 8]

This is the reference side of `make bench`'s product-path table: what a user of BasicSR 1.4.2 runs to
make x4plus pairs on the CPU (the dataset's kernel draws and the model's feed_data chain, batches of 8,
torch threads = cores), timed as a whole process like `pairforge degrade`. Bench-only; nothing in the
library imports it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "degradations"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args(argv)
    import cv2
    import torch
    from basicsr_shim import BasicSRChain

    torch.set_num_threads(os.cpu_count() or 1)
    chain = BasicSRChain()
    paths = sorted(p for p in args.input.iterdir() if p.suffix.lower() == ".png")
    args.output.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for s in range(0, len(paths), args.batch):
        chunk = paths[s : s + args.batch]
        imgs = [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in chunk]
        gt = torch.stack([torch.from_numpy(i).permute(2, 0, 1).float() / 255.0 for i in imgs]).contiguous()
        lq = chain(gt)
        for p, x in zip(chunk, lq):
            arr = (x * 255).round().clamp(0, 255).byte().permute(1, 2, 0).contiguous().numpy()
            cv2.imwrite(str(args.output / p.name), cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    print(f"{len(paths)} pairs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
