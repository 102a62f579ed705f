"""A stand-in runner for the sweep tests: writes the run-directory files the trainer writes."""

import json
import time
from pathlib import Path


def run(config: dict, run_dir: Path) -> str:
    run_dir = Path(run_dir)
    with open(run_dir / "calls", "a") as f:
        f.write("call\n")
    time.sleep(config.get("sleep", 0))
    if config.get("record_threads"):
        import torch

        (run_dir / "threads").write_text(str(torch.get_num_threads()))
    state = "failed" if config.get("fail") else "finished"
    lines = [
        {"epoch": e, "val/loss": config["lr"] * (e + 1), "time": {"epoch_s": 0.1}} for e in range(2)
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    best = {"epoch": 0, "criterion": "val/loss", "val": {"loss": config["lr"]}, "test": {}}
    (run_dir / "best.json").write_text(json.dumps(best))
    status = {
        "state": state,
        "reason": "loss is nan at step 3" if state == "failed" else None,
        "heartbeat": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    }
    (run_dir / "status.json").write_text(json.dumps(status))
    return state
